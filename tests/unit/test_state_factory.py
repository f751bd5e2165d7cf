"""open_state_store picks the backend; a short lock wait on SQLite ends in StateBusy."""

from __future__ import annotations

import time

import pytest

from fsworker.state_store import (
    SqliteStateStore,
    StateBusy,
    StateError,
    StateTransaction,
    open_state_store,
)


def test_a_path_opens_sqlite_and_nothing_is_an_error(tmp_path):
    store = open_state_store("f", path=tmp_path / "f.sqlite3")
    assert isinstance(store, SqliteStateStore)
    store.close()
    with pytest.raises(StateError, match="function f has no state store"):
        open_state_store("f")


def test_a_short_lock_wait_on_sqlite_ends_busy(tmp_path):
    path = tmp_path / "f.sqlite3"
    holder = SqliteStateStore(path)
    holder.begin()  # what a replica's batch does at its first state call
    waiter = open_state_store("f", path=path, lock_timeout_ms=200)
    assert waiter.get(b"k") is None, "reads do not wait for the writer"
    started = time.monotonic()
    with pytest.raises(StateBusy, match="stayed locked for 200 ms"):
        StateTransaction(waiter).put(b"k", b"v")
    assert time.monotonic() - started < 5
    holder.abort()
    StateTransaction(waiter).put(b"k", b"v")  # free again


def test_purge_removes_the_sqlite_files(tmp_path):
    path = tmp_path / "f.sqlite3"
    store = SqliteStateStore(path)
    store.apply({b"k": b"v"}, {})
    store.purge()
    assert not list(tmp_path.iterdir())
