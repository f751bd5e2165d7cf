"""Exactly-once state marks (fsworker/done_marks.py) over a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from fsworker.done_marks import ENABLED_KEY, MARK_PREFIX, MARK_TTL, DoneMarks
from fsworker.state_store import SqliteStateStore, StateTransaction


def _tx(tmp_path: Path) -> StateTransaction:
    return StateTransaction(SqliteStateStore(tmp_path / "s.sqlite3"))


def test_nothing_is_looked_up_or_marked_until_state_is_written(tmp_path: Path):
    tx = _tx(tmp_path)
    marks = DoneMarks(tx)
    marks.mark([b"m1"])  # the batch wrote no state: no mark
    tx.commit()
    assert marks.already_done([b"m1"]) == set()
    assert not marks.in_use()  # the loop then does not even serialize the batch's ids
    assert tx.store.get(ENABLED_KEY) is None


def test_marks_commit_with_the_state_and_are_found_by_another_replica(tmp_path: Path):
    tx = _tx(tmp_path)
    tx.add(b"count", 1)
    DoneMarks(tx).mark([b"m1", b"m2"])
    tx.commit()
    other = DoneMarks(_tx(tmp_path))  # a new worker, after a crash
    assert other.in_use()
    assert other.already_done([b"m1", b"m3", b"m2"]) == {b"m1", b"m2"}
    assert tx.store.scan(b"", 100) == [(b"count", b"1")], "marks are not listed"


def test_a_rolled_back_batch_leaves_no_mark(tmp_path: Path):
    tx = _tx(tmp_path)
    tx.add(b"count", 1)
    DoneMarks(tx).mark([b"m1"])
    tx.rollback()
    assert tx.store.get(MARK_PREFIX + b"m1") is None


def test_old_marks_are_dropped_by_a_later_commit(tmp_path: Path):
    now = [0.0]
    tx = _tx(tmp_path)
    marks = DoneMarks(tx, clock=lambda: now[0])
    tx.add(b"count", 1)
    marks.mark([b"old"])
    tx.commit()
    now[0] = MARK_TTL + 1
    tx.add(b"count", 1)
    marks.mark([b"new"])
    tx.commit()
    assert tx.store.get(MARK_PREFIX + b"old") is None
    assert tx.store.get(MARK_PREFIX + b"new") == b"1"
