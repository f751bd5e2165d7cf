"""The attempt ledger: what a function's workers on this host had in flight, on disk.

Pulsar's redelivery count does not grow when a consumer dies with a message
unacknowledged, so a message that kills its worker (a native crash, an abort, a
hang-kill) would be redelivered for ever. The ledger closes that gap with one
small SQLite database per function on the host (path from fsd, shared by the
function's replicas there):

* ``inflight``: before a guest call, the worker writes the ids (and attempt
  numbers) of the messages it is about to call in ONE row: one write per call,
  not per message. The next write replaces it.
* When a worker finds a row whose holder process is dead, the worker died with
  those messages in flight: each of them gets an ``attempts`` row saying how many
  attempts it has had. Whoever notices first (any replica, or the dead one's own
  next incarnation) converts the row, in one transaction.
* A message with an ``attempts`` row is a *suspect*: the processing loop calls it
  alone, so a second crash is blamed on the right message and the innocent ones go
  through; once its attempts are used up it is dead-lettered without a call.
* at-most-once: the ``inflight`` rows of the last ``TAKEN_WINDOW`` seconds are
  kept: a message whose id was taken by a worker that then died before its
  (grouped) acknowledgement reached the broker is skipped, not processed again.

Durability: WAL with ``synchronous=OFF``. A committed write is in the OS page
cache, which survives the death of the process (what the ledger counts), not a
crash of the host.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import structlog

from fscommon.paths import suspect_marker
from fsworker.sqlite_shared import open_shared

log = structlog.get_logger("fsworker.attempts")

# How long a dead worker's suspects (and a skipped at-most-once id) are remembered.
RETENTION = 24 * 3600.0
# at-most-once: how long after taking a message its id is kept. The client sends
# grouped acknowledgements every 100 ms; this is the margin for the ack to reach
# the broker before the row of a live worker may go.
TAKEN_WINDOW = 5.0
# How long opening may wait for the function's other replicas to let go of the file.
OPEN_TIMEOUT_S = 10.0

_RECORD = struct.Struct("<HB")  # attempt number, id length; then the serialized id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inflight (
    replica INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    holder TEXT NOT NULL,
    at REAL NOT NULL,
    ids BLOB NOT NULL,
    PRIMARY KEY (holder, seq)
);
CREATE TABLE IF NOT EXISTS attempts (
    mid BLOB PRIMARY KEY,
    count INTEGER NOT NULL,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""


def process_token(pid: int) -> str:
    """``pid:start-time``: names one process, even after its pid is reused."""
    return f"{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None  # a zombie has died; only its exit status is left
    return fields[19].decode()  # field 22 of stat: start time in clock ticks


def holder_alive(token: str) -> bool:
    """Whether the process a token names still runs."""
    pid, _, start = token.partition(":")
    try:
        return _start_time(int(pid)) == start
    except ValueError:
        return False


def pack_ids(entries: Iterable[tuple[bytes, int]]) -> bytes:
    """(serialized message id, attempt number) pairs as one blob."""
    return b"".join(_RECORD.pack(n, len(mid)) + mid for mid, n in entries)


def unpack_ids(blob: bytes) -> list[tuple[bytes, int]]:
    """The inverse of ``pack_ids``."""
    out, off, size = [], 0, _RECORD.size
    while off + size <= len(blob):
        n, length = _RECORD.unpack_from(blob, off)
        off += size
        out.append((blob[off : off + length], n))
        off += length
    return out


def _drop_expired(db: sqlite3.Connection) -> None:
    """Forget what is older than RETENTION (at open, in one transaction)."""
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM attempts WHERE at < ?", (now - RETENTION,))
    db.execute("DELETE FROM inflight WHERE at < ?", (now - RETENTION,))
    db.execute("COMMIT")


class AttemptLedger:
    """One worker's view of the function's ledger (see the module docstring)."""

    def __init__(
        self, path: Path, replica: int, token: str | None = None, keep_taken: bool = False
    ) -> None:
        self.path = path
        self.replica = replica
        self.token = token or process_token(os.getpid())
        self._keep_taken = keep_taken  # at-most-once: keep the last TAKEN_WINDOW of rows
        self._db = open_shared(path, _SCHEMA, "OFF", OPEN_TIMEOUT_S, prepare=_drop_expired)
        self._seq = 0
        self._generation = -1
        self._known: dict[bytes, int] = {}  # the attempts table, cached per generation
        self._pending: list[tuple[bytes, int | None]] = []  # suspect rows to update or drop
        self._kept: list[tuple[float, int]] = []  # at-most-once: (time, seq) of my rows
        self.recover()

    # --- finding the dead -------------------------------------------------------------------

    def recover(self) -> int:
        """Convert the rows of every dead holder into attempts; how many messages."""
        holders = [
            h
            for (h,) in self._db.execute(
                "SELECT DISTINCT holder FROM inflight WHERE holder != ?", (self.token,)
            )
        ]
        converted = 0
        for holder in holders:
            if not holder_alive(holder):
                converted += self._convert(holder)
        return converted

    def _convert(self, holder: str) -> int:
        db = self._db
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute("SELECT ids FROM inflight WHERE holder = ?", (holder,)).fetchall()
            entries = [e for (blob,) in rows for e in unpack_ids(blob)]
            db.executemany(
                "INSERT INTO attempts (mid, count, at) VALUES (?, ?, ?) ON CONFLICT (mid) "
                "DO UPDATE SET count = max(count, excluded.count), at = excluded.at",
                [(mid, n, now) for mid, n in entries],
            )
            db.execute("DELETE FROM inflight WHERE holder = ?", (holder,))
            if entries:
                db.execute("UPDATE meta SET v = v + 1 WHERE k = 'generation'")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if entries:
            log.warning(
                "a worker died with messages in flight; they count as attempts and are "
                "now called one at a time",
                holder=holder,
                messages=len(entries),
            )
        return len(entries)

    # --- per batch ----------------------------------------------------------------------------

    def known(self) -> dict[bytes, int]:
        """Suspects: message id -> attempts it has had (cached until the ledger changes)."""
        self.recover()
        (generation,) = self._db.execute("SELECT v FROM meta WHERE k = 'generation'").fetchone()
        if generation != self._generation:
            self._known = dict(self._db.execute("SELECT mid, count FROM attempts"))
            self._generation = generation
        return self._known

    def begin(self, entries: Sequence[tuple[bytes, int]]) -> None:
        """Note ``entries`` (message id, attempt number) in flight, before the guest call.

        One transaction: it also applies what ``settle`` recorded about suspects and
        replaces this worker's previous row (at-most-once keeps recent rows).
        """
        db = self._db
        now = time.time()
        self._seq += 1
        db.execute("BEGIN")
        try:
            self._apply_pending(now)
            if self._keep_taken:
                self._drop_old_taken(now)
            else:
                db.execute("DELETE FROM inflight WHERE holder = ?", (self.token,))
            db.execute(
                "INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?, ?)",
                (self.replica, self._seq, self.token, now, pack_ids(entries)),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if self._keep_taken:
            self._kept.append((now, self._seq))

    @contextlib.contextmanager
    def suspect_call(self) -> Iterator[None]:
        """Around the call of a suspect: if the worker dies inside, fsd blames the message.

        A plain file beside the ledger holding this pid (fscommon/paths.py
        ``suspect_marker``): it outlives the process, which a ZeroMQ event sent
        just before an abort might not.
        """
        marker = suspect_marker(self.path, self.replica)
        marker.write_text(str(os.getpid()))
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)

    def settle(self, mid: bytes, retry_attempts: int | None) -> None:
        """A suspect's attempt ended: kept with its count for a retry, or done (None)."""
        self._pending.append((mid, retry_attempts))

    def close(self) -> None:
        """A clean stop: nothing is in flight any more."""
        db = self._db
        db.execute("BEGIN")
        try:
            self._apply_pending(time.time())
            if not self._keep_taken:
                db.execute("DELETE FROM inflight WHERE holder = ?", (self.token,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.close()

    def _apply_pending(self, now: float) -> None:
        if not self._pending:
            return
        db = self._db
        for mid, count in self._pending:
            if count is None:
                db.execute("DELETE FROM attempts WHERE mid = ?", (mid,))
            else:
                db.execute(
                    "UPDATE attempts SET count = max(count, ?), at = ? WHERE mid = ?",
                    (count, now, mid),
                )
            if count is None:
                self._known.pop(mid, None)
            else:
                self._known[mid] = count
        db.execute("UPDATE meta SET v = v + 1 WHERE k = 'generation'")
        self._pending.clear()

    def _drop_old_taken(self, now: float) -> None:
        kept = self._kept
        cut = 0
        while cut < len(kept) and kept[cut][0] < now - TAKEN_WINDOW:
            cut += 1
        if cut:
            self._db.execute(
                "DELETE FROM inflight WHERE holder = ? AND seq <= ?",
                (self.token, kept[cut - 1][1]),
            )
            del kept[:cut]
