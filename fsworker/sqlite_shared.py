"""Opening a SQLite file that a function's replicas share (state store, attempt ledger).

A function's replicas start together and open the same fresh file at the same
moment. Switching it to WAL and creating its tables can then fail at once with
"database is locked" instead of waiting for the busy timeout (SQLite does not
call the busy handler for every lock it meets while the file changes mode or
schema under it). The state store always retried; the attempt ledger did not,
so a replica sometimes ran without its ledger (and at-most-once without its
protection). Both open through here now.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL"})


def is_lock_error(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (worth a retry)."""
    text = str(exc)
    return "locked" in text or "busy" in text


def open_shared(
    path: Path,
    schema: str,
    synchronous: str,
    timeout_s: float,
    prepare: Callable[[sqlite3.Connection], None] | None = None,
) -> sqlite3.Connection:
    """Connect in autocommit, switch to WAL, set ``synchronous``, run ``schema``, then ``prepare``.

    All of it is retried while another connection holds a lock, until ``timeout_s``;
    then the last sqlite3.OperationalError is raised (so is any other error at once).
    """
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous={synchronous!r}: use one of {sorted(SYNCHRONOUS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.executescript(schema)
            if prepare is not None:
                prepare(db)
            return db
        except sqlite3.OperationalError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if not is_lock_error(exc) or time.monotonic() >= deadline:
                db.close()
                raise
            attempt += 1
            # Jitter: two replicas that collided once should not collide again in step.
            time.sleep(min(0.005 * attempt, 0.1) * (0.5 + random.random()))
