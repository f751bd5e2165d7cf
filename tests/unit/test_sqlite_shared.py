"""fsworker/sqlite_shared.py: a shared SQLite file opens even while another replica holds it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fsworker.sqlite_shared import open_shared

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY);"


class Refuses:
    """A ``prepare`` step that meets ``error`` the first ``times`` times."""

    def __init__(self, times: int, error: str = "database is locked") -> None:
        self.times, self.error, self.calls = times, error, 0

    def __call__(self, db: sqlite3.Connection) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise sqlite3.OperationalError(self.error)
        db.execute("INSERT INTO t VALUES (1)")


def test_a_locked_file_is_retried_until_it_opens(tmp_path: Path) -> None:
    refuses = Refuses(times=3)
    db = open_shared(tmp_path / "d" / "x.sqlite3", SCHEMA, "OFF", 5.0, prepare=refuses)
    assert refuses.calls == 4
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 0
    assert db.execute("SELECT k FROM t").fetchall() == [(1,)]


def test_a_lock_that_stays_fails_after_the_timeout(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        open_shared(tmp_path / "x.sqlite3", SCHEMA, "FULL", 0.2, prepare=Refuses(times=10**6))


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    refuses = Refuses(times=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        open_shared(tmp_path / "x.sqlite3", SCHEMA, "FULL", 5.0, prepare=refuses)
    assert refuses.calls == 1


def test_synchronous_is_one_of_sqlites_levels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous='full; DROP'"):
        open_shared(tmp_path / "x.sqlite3", SCHEMA, "full; DROP", 1.0)
