"""Function state in PostgreSQL: one table shared by every host (``state_url``).

Same semantics as the SQLite backend (fsworker/state_store.py): a batch's
state is one transaction, taken at the batch's first state access and
committed after its outputs are confirmed, before its inputs are acknowledged.

Serialization: the transaction starts by taking a transaction-scoped advisory
lock on the function (``pg_advisory_xact_lock``), the counterpart of SQLite's
``BEGIN IMMEDIATE``. So the batches of one function that touch state run one
after the other across all its replicas on all hosts, and a value read under
the lock cannot change before the commit: ``state_add`` returns exact counts.
SERIALIZABLE isolation was the alternative and was rejected: it detects a
conflict at COMMIT, which the loop reaches only after the batch's outputs
are published, so a conflicting batch would have sent outputs computed from
state that never committed (docs/state.md).

The lock dies with the session, so a worker killed with -9 releases it as soon
as the server sees its connection close; TCP keepalives (set per session)
bound that for a host that vanished.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from fsworker.state_store import RESERVED_PREFIX, StateBusy, StateError

TABLE = "fs_state"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    function text  NOT NULL,
    key      bytea NOT NULL,
    value    bytea NOT NULL,
    PRIMARY KEY (function, key)
)
"""
# First half of the two-key advisory lock: keeps our locks apart from other
# users of advisory locks in the same database ("FS" + 1 for state, 2 for schema).
_LOCK_CLASS = 0x4653_0001
_SCHEMA_LOCK = 0x4653_0002

_UPSERT = (
    f"INSERT INTO {TABLE} (function, key, value) VALUES (%s, %s, %s) "
    "ON CONFLICT (function, key) DO UPDATE SET value = EXCLUDED.value"
)
_DELETE = f"DELETE FROM {TABLE} WHERE function = %s AND key = %s"
# Integer adds as value + delta in SQL (values are decimal ASCII text, missing = 0).
_ADD = (
    f"INSERT INTO {TABLE} (function, key, value) "
    "VALUES (%(f)s, %(k)s, convert_to(%(d)s::numeric::text, 'UTF8')) "
    "ON CONFLICT (function, key) DO UPDATE SET value = convert_to("
    f"(convert_from({TABLE}.value, 'UTF8')::numeric + %(d)s::numeric)::text, 'UTF8')"
)


def describe_url(url: str) -> str:
    """``user@host:port/db`` of a PostgreSQL URL, without the password (for messages)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparseable PostgreSQL URL"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    where = f"{host}:{params.get('port') or 5432}/{params.get('dbname') or params.get('user', '')}"
    return f"{params['user']}@{where}" if params.get("user") else where


def check_url(url: str) -> None:
    """Raise StateError when ``url`` is not a PostgreSQL URL (``postgresql://...``)."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise StateError(
            f"state_url must be a PostgreSQL URL such as postgresql://user:pass@host:5432/db, "
            f"got {_redact(url, url)!r}"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = _redact(str(exc), url)
        raise StateError(f"state_url is not a valid PostgreSQL URL: {reason}") from None


def _redact(text: str, url: str) -> str:
    """``text`` with the URL's password replaced, wherever it appears."""
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def connect(url: str, connect_timeout: float = 5.0) -> psycopg.Connection[Any]:
    """An autocommit connection with keepalives; StateError naming where on failure."""
    check_url(url)
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, round(connect_timeout)),
            # The client notices a dead server...
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            application_name="function-stream",
        )
        # ...and the server a dead host, whose advisory lock it then releases.
        conn.execute(
            "SELECT set_config('tcp_keepalives_idle', '10', false),"
            " set_config('tcp_keepalives_interval', '5', false),"
            " set_config('tcp_keepalives_count', '3', false)"
        )
    except psycopg.Error as exc:
        raise StateError(
            f"cannot connect to the PostgreSQL state store at {describe_url(url)}: "
            f"{_redact(_first_line(exc), url)}; check state_url and that the server is running"
        ) from None
    return conn


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the state table if missing (an advisory lock keeps racing creators apart)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_SCHEMA_LOCK,))
        conn.execute(_SCHEMA)


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class PostgresStateStore:
    """The shared backend: rows of one function in the ``fs_state`` table."""

    def __init__(self, url: str, function: str, lock_timeout_ms: int = 10_000) -> None:
        self.url = url
        self.function = function
        self.where = describe_url(url)
        self._lock_timeout_ms = lock_timeout_ms
        self._conn: psycopg.Connection[Any] | None = None
        self._in_transaction = False
        self._connection()  # fail at open, not at the first message

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = connect(self.url)
            try:
                ensure_schema(conn)
            except psycopg.Error as exc:
                conn.close()
                raise self._error("cannot create the state table", exc) from None
            self._conn = conn
        return self._conn

    def _error(self, what: str, exc: psycopg.Error) -> StateError:
        """A one-line StateError; a broken connection is dropped and reopened next time."""
        if self._conn is not None and self._conn.broken:
            self._conn = None
            self._in_transaction = False
        reason = _redact(_first_line(exc), self.url)
        where = f"PostgreSQL at {self.where}, function {self.function}"
        return StateError(f"{what} ({where}): {reason}")

    def get(self, key: bytes) -> bytes | None:
        try:
            row = (
                self._connection()
                .execute(
                    f"SELECT value FROM {TABLE} WHERE function = %s AND key = %s",
                    (self.function, key),
                )
                .fetchone()
            )
        except psycopg.Error as exc:
            raise self._error("state read failed", exc) from None
        return bytes(row[0]) if row else None

    def begin(self) -> None:
        if self._in_transaction:
            return
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            self._in_transaction = True
            conn.execute(
                "SELECT set_config('lock_timeout', %s, true)", (f"{self._lock_timeout_ms}ms",)
            )
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, self.function)
            )
        except pg_errors.LockNotAvailable:
            self._quiet_abort()
            raise StateBusy(
                f"state of {self.function} stayed locked for {self._lock_timeout_ms} ms "
                f"(a batch of another replica holds it; PostgreSQL at {self.where})"
            ) from None
        except psycopg.Error as exc:
            self._quiet_abort()
            raise self._error("cannot start a state transaction", exc) from None

    def apply(self, puts: dict[bytes, bytes | None], adds: dict[bytes, int]) -> None:
        if not puts and not adds and not self._in_transaction:
            return
        self.begin()
        conn = self._connection()
        f = self.function
        try:
            with conn.cursor() as cur:
                upserts = [(f, k, v) for k, v in puts.items() if v is not None]
                deletes = [(f, k) for k, v in puts.items() if v is None]
                if upserts:
                    cur.executemany(_UPSERT, upserts)
                if deletes:
                    cur.executemany(_DELETE, deletes)
                if adds:
                    cur.executemany(_ADD, [{"f": f, "k": k, "d": d} for k, d in adds.items()])
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            self._quiet_abort()
            if isinstance(exc, pg_errors.InvalidTextRepresentation):
                raise StateError(
                    f"cannot add to a value that is not a decimal integer (function {f})"
                ) from None
            raise self._error("state commit failed", exc) from None
        except BaseException:
            self._quiet_abort()
            raise
        self._in_transaction = False

    def abort(self) -> None:
        if self._in_transaction:
            self._in_transaction = False
            if self._conn is not None and not self._conn.closed:
                try:
                    self._conn.execute("ROLLBACK")
                except psycopg.Error as exc:
                    raise self._error("state rollback failed", exc) from None

    def _quiet_abort(self) -> None:
        """Roll back after an error; a connection too broken for that is reopened later."""
        with contextlib.suppress(StateError):
            self.abort()

    def present(self, keys: list[bytes]) -> set[bytes]:
        if not keys:
            return set()
        try:
            rows = (
                self._connection()
                .execute(
                    f"SELECT key FROM {TABLE} WHERE function = %s AND key = ANY(%s)",
                    (self.function, keys),
                )
                .fetchall()
            )
        except psycopg.Error as exc:
            raise self._error("state read failed", exc) from None
        return {bytes(k) for (k,) in rows}

    def scan(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        end = _prefix_end(prefix)
        query = f"SELECT key, value FROM {TABLE} WHERE function = %s AND key >= %s"
        params: list[Any] = [self.function, prefix]
        if end is not None:
            query += " AND key < %s"
            params.append(end)
        # Keys under RESERVED_PREFIX are the platform's (fsworker/done_marks.py), not listed.
        query += " AND substring(key from 1 for %s) <> %s"
        params += [len(RESERVED_PREFIX), RESERVED_PREFIX]
        query += " ORDER BY key LIMIT %s"
        params.append(limit)
        try:
            rows = self._connection().execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise self._error("state scan failed", exc) from None
        return [(bytes(k), bytes(v)) for k, v in rows]

    def purge(self) -> None:
        """Delete every row of the function (``fsctl delete --purge``)."""
        try:
            self._connection().execute(f"DELETE FROM {TABLE} WHERE function = %s", (self.function,))
        except psycopg.Error as exc:
            raise self._error("state purge failed", exc) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._in_transaction = False


def check_reachable(url: str) -> None:
    """fsd's start-up check: connect and create the table; StateError saying where."""
    conn = connect(url)
    try:
        ensure_schema(conn)
    except psycopg.Error as exc:
        raise StateError(
            f"cannot create the state table {TABLE} in PostgreSQL at {describe_url(url)}: "
            f"{_redact(_first_line(exc), url)}; grant the user CREATE on the schema or "
            f"create the table (docs/state.md)"
        ) from None
    finally:
        conn.close()
