"""Function state: a small key-value store behind an interface, SQLite by default.

Two backends: SQLite (this module), one database per function under fsd's
state dir, in WAL mode, shared by that function's replicas on the host (and
read by fsd for ``fsctl state``); and PostgreSQL (fsworker/state_postgres.py),
one table shared by every host, when fsd has a ``state_url``.
``open_state_store`` picks one.

Each batch's state is one serializable transaction: the first state access
of a batch takes the database's write lock (``BEGIN IMMEDIATE``), writes go
into a ``StateTransaction`` (an overlay the guest reads its own writes
through, so a failed guest call can be undone), and the transaction commits
after the batch's outputs are confirmed and before its inputs are
acknowledged. So a value the guest reads or a count ``state_add`` returns is
exact even when replicas share keys: their batches touching state run one
after the other (a batch that uses no state takes no lock). Integer additions
are kept as deltas and applied with ``value + delta`` in SQL.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fsworker.sqlite_shared import open_shared

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key   BLOB PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

MAX_KEY_BYTES = 4096
# Keys the platform keeps beside a function's own (fsworker/done_marks.py); scan skips them.
RESERVED_PREFIX = b"\x00fs-"
MAX_VALUE_BYTES = 4 * 1024 * 1024


class StateError(Exception):
    """A state operation the guest asked for cannot be done (e.g. add to a non-integer)."""


class StateBusy(StateError):
    """The function's state stayed locked (by another replica's batch) past the wait allowed."""


class StateStore(Protocol):
    """What a backend provides: SQLite (one host) or PostgreSQL (shared by hosts)."""

    def get(self, key: bytes) -> bytes | None:
        """The committed value, or None when the key is missing."""
        ...

    def begin(self) -> None:
        """Take the write lock: nobody else changes the state until apply or abort."""
        ...

    def apply(self, puts: dict[bytes, bytes | None], adds: dict[bytes, int]) -> None:
        """Commit a batch of writes atomically (None deletes; adds are integer deltas)."""
        ...

    def abort(self) -> None:
        """Release the lock begin took, writing nothing."""
        ...

    def scan(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Keys with a prefix, in key order, at most ``limit``."""
        ...

    def present(self, keys: list[bytes]) -> set[bytes]:
        """Which of ``keys`` exist (one round trip for the whole list)."""
        ...

    def purge(self) -> None:
        """Remove all of the function's state (``fsctl delete --purge``)."""
        ...

    def close(self) -> None:
        """Release the backend."""
        ...


def parse_int(value: bytes | None) -> int:
    """A counter's value: decimal ASCII text; missing is 0."""
    if value is None:
        return 0
    try:
        return int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise StateError(
            f"cannot add to a value that is not a decimal integer: {value[:40]!r}"
        ) from None


class SqliteStateStore:
    """The embedded backend: one SQLite file per function, WAL mode."""

    def __init__(self, path: Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_ms / 1000
        self._in_transaction = False
        try:
            # FULL: a commit that returned survives a power cut, which lets us ack.
            self._db = open_shared(path, _SCHEMA, "FULL", self._busy_timeout_s)
        except sqlite3.OperationalError as exc:
            raise StateError(f"cannot open state database {path}: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        row = self._db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def begin(self) -> None:
        if self._in_transaction:
            return
        # SQLite's busy handler waits for the lock; a few errors come back at once
        # instead (e.g. while a replica switches a new database to WAL): retry those,
        # all within one deadline.
        deadline = time.monotonic() + self._busy_timeout_s
        attempt = 0
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:
                attempt += 1
                if time.monotonic() >= deadline:
                    raise StateBusy(
                        f"state database {self.path} stayed locked for "
                        f"{self._busy_timeout_s * 1000:.0f} ms (another replica's batch holds it)"
                    ) from None
                time.sleep(min(0.01 * attempt, 0.2))
        self._in_transaction = True

    def apply(self, puts: dict[bytes, bytes | None], adds: dict[bytes, int]) -> None:
        if not puts and not adds and not self._in_transaction:
            return
        db = self._db
        self.begin()
        try:
            for key, value in puts.items():
                if value is None:
                    db.execute("DELETE FROM state WHERE key=?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))
            for key, delta in adds.items():
                row = db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
                current = parse_int(bytes(row[0]) if row else None)
                db.execute(
                    "INSERT OR REPLACE INTO state VALUES (?, ?)",
                    (key, str(current + delta).encode()),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False

    def abort(self) -> None:
        if self._in_transaction:
            self._in_transaction = False
            self._db.execute("ROLLBACK")

    def present(self, keys: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for start in range(0, len(keys), 500):  # SQLite allows 999 parameters
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key FROM state WHERE key IN ({marks})", chunk)
            found.update(bytes(k) for (k,) in rows)
        return found

    def scan(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        # Keys under RESERVED_PREFIX are the platform's (fsworker/done_marks.py), not listed.
        rows = self._db.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ? "
            "AND substr(key, 1, ?) != ? ORDER BY key LIMIT ?",
            (len(prefix), prefix, len(RESERVED_PREFIX), RESERVED_PREFIX, limit),
        ).fetchall()
        return [(bytes(k), bytes(v)) for k, v in rows]

    def purge(self) -> None:
        """Delete the database files (the store is closed after this)."""
        self._db.close()
        for name in (self.path.name, self.path.name + "-wal", self.path.name + "-shm"):
            self.path.with_name(name).unlink(missing_ok=True)

    def close(self) -> None:
        self._db.close()


def open_state_store(
    function: str,
    *,
    path: str | Path | None = None,
    url: str | None = None,
    lock_timeout_ms: int = 10_000,
) -> StateStore:
    """The function's store: PostgreSQL when ``url`` is given, else SQLite at ``path``.

    ``lock_timeout_ms`` is how long ``begin`` waits for another batch's lock
    before it raises StateBusy (fsd's ``fsctl state`` waits only briefly).
    """
    if url:
        from fsworker.state_postgres import PostgresStateStore

        return PostgresStateStore(url, function, lock_timeout_ms=lock_timeout_ms)
    if path is None:
        raise StateError(f"function {function} has no state store: give a path or a state_url")
    return SqliteStateStore(Path(path), busy_timeout_ms=lock_timeout_ms)


_MISSING = object()


@dataclass
class StateTransaction:
    """Writes of one batch, readable by the guest before they are committed.

    An undo log lets the host take a savepoint before each guest call and roll
    back to it when that call fails, so a message that traps half-way leaves
    no state behind and its retry does not count twice.
    """

    store: StateStore
    puts: dict[bytes, bytes | None] = field(default_factory=dict)
    adds: dict[bytes, int] = field(default_factory=dict)
    _undo: list[tuple[bytes, object, object]] = field(default_factory=list)
    # The store's transaction (and its lock) was taken by this batch: it must be committed
    # or rolled back before the inputs are acknowledged, even if nothing was written.
    begun: bool = False

    def _remember(self, key: bytes) -> None:
        self.store.begin()
        self.begun = True
        self._undo.append((key, self.puts.get(key, _MISSING), self.adds.get(key, _MISSING)))

    def savepoint(self) -> int:
        """A point to roll back to."""
        return len(self._undo)

    def rollback_to(self, savepoint: int) -> None:
        """Undo every write made after ``savepoint``."""
        while len(self._undo) > savepoint:
            key, put, add = self._undo.pop()
            if put is _MISSING:
                self.puts.pop(key, None)
            else:
                self.puts[key] = put  # type: ignore[assignment]
            if add is _MISSING:
                self.adds.pop(key, None)
            else:
                self.adds[key] = add  # type: ignore[assignment]

    def get(self, key: bytes) -> bytes | None:
        """Read through this batch's writes to the committed value."""
        self.store.begin()
        self.begun = True
        base = self.puts[key] if key in self.puts else self.store.get(key)
        if key in self.adds:
            return str(parse_int(base) + self.adds[key]).encode()
        return base

    def put(self, key: bytes, value: bytes) -> None:
        _check(key, value)
        self._remember(key)
        self.adds.pop(key, None)
        self.puts[key] = value

    def delete(self, key: bytes) -> None:
        _check(key, b"")
        self._remember(key)
        self.adds.pop(key, None)
        self.puts[key] = None

    def add(self, key: bytes, delta: int) -> int:
        """Add to a counter; returns its new value."""
        _check(key, b"")
        self._remember(key)
        if key in self.puts:
            # A put earlier in the batch fixes the base: fold the delta into it.
            value = parse_int(self.puts[key]) + delta
            self.puts[key] = str(value).encode()
            return value
        value = parse_int(self.store.get(key)) + self.adds.get(key, 0) + delta
        self.adds[key] = self.adds.get(key, 0) + delta
        return value

    def commit(self) -> None:
        """Make the batch's writes durable (before its inputs are acknowledged)."""
        self.store.apply(self.puts, self.adds)
        self.puts, self.adds, self._undo = {}, {}, []
        self.begun = False

    def rollback(self) -> None:
        """Forget the batch's writes (its inputs will be redelivered) and release the lock."""
        self.puts, self.adds, self._undo = {}, {}, []
        self.begun = False
        self.store.abort()

    def __iter__(self) -> Iterator[bytes]:
        return iter(set(self.puts) | set(self.adds))


def _check(key: bytes, value: bytes) -> None:
    if len(key) > MAX_KEY_BYTES:
        raise StateError(f"state key of {len(key)} bytes exceeds {MAX_KEY_BYTES}")
    if len(value) > MAX_VALUE_BYTES:
        raise StateError(f"state value of {len(value)} bytes exceeds {MAX_VALUE_BYTES}")
