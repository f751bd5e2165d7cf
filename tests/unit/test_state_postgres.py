"""The PostgreSQL state store against a real server (tests/postgres.py), never a fake."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from fsworker.state_postgres import PostgresStateStore, check_reachable, describe_url
from fsworker.state_store import StateBusy, StateError, StateTransaction, open_state_store
from tests.helpers import REPO, unique, wait_for


@pytest.fixture
def function() -> str:
    return unique("pgfn")


def test_get_put_delete_add_and_scan(postgres_url, function):
    store = open_state_store(function, url=postgres_url)
    assert isinstance(store, PostgresStateStore)
    tx = StateTransaction(store)
    assert tx.get(b"k") is None
    tx.put(b"k", b"")
    assert tx.get(b"k") == b"", "an empty value is not a missing key"
    assert tx.add(b"n", 2) == 2 and tx.add(b"n", 40) == 42
    assert store.get(b"n") is None, "nothing is visible before commit"
    tx.commit()
    assert store.get(b"k") == b"" and store.get(b"n") == b"42"
    # A committed counter gets its delta in SQL.
    tx.add(b"n", -50)
    tx.delete(b"k")
    tx.commit()
    assert store.get(b"n") == b"-8" and store.get(b"k") is None
    # Keys are bytes, ordered bytewise; a prefix ending in 0xff still bounds the scan.
    store.apply({b"w:a": b"1", b"w:b": b"2", b"w\xff\xff": b"3", b"x": b"4", b"\x00": b"5"}, {})
    assert store.scan(b"w:", 10) == [(b"w:a", b"1"), (b"w:b", b"2")]
    assert store.scan(b"w\xff", 10) == [(b"w\xff\xff", b"3")]
    assert [k for k, _ in store.scan(b"", 3)] == [b"\x00", b"n", b"w:a"]
    store.close()


def test_functions_do_not_see_each_others_state_and_purge_removes_one(postgres_url, function):
    a = open_state_store(function, url=postgres_url)
    b = open_state_store(function + "-other", url=postgres_url)
    a.apply({b"k": b"a"}, {})
    b.apply({b"k": b"b"}, {b"n": 1})
    assert a.get(b"k") == b"a" and a.get(b"n") is None
    a.purge()
    assert a.scan(b"", 10) == [] and b.scan(b"", 10) == [(b"k", b"b"), (b"n", b"1")]
    a.close()
    b.close()


def test_rollback_writes_nothing_and_releases_the_lock(postgres_url, function):
    store = open_state_store(function, url=postgres_url)
    other = open_state_store(function, url=postgres_url, lock_timeout_ms=200)
    tx = StateTransaction(store)
    tx.add(b"n", 5)
    sp = tx.savepoint()
    tx.put(b"x", b"y")
    tx.rollback_to(sp)
    assert tx.get(b"x") is None
    tx.rollback()
    assert store.get(b"n") is None
    other.begin()  # would raise StateBusy if the rollback kept the lock
    other.abort()
    store.close()
    other.close()


def test_a_held_lock_makes_a_short_waiter_busy(postgres_url, function):
    holder = open_state_store(function, url=postgres_url)
    waiter = open_state_store(function, url=postgres_url, lock_timeout_ms=200)
    holder.begin()
    started = time.monotonic()
    with pytest.raises(StateBusy, match=f"state of {function} stayed locked for 200 ms"):
        StateTransaction(waiter).put(b"k", b"v")
    waited = time.monotonic() - started
    holder.abort()
    # The waiter's connection stays usable.
    tx = StateTransaction(waiter)
    tx.put(b"k", b"v")
    tx.commit()
    assert holder.get(b"k") == b"v"
    assert waited < 5, f"a 200 ms lock wait took {waited:.1f} s"
    holder.close()
    waiter.close()


def test_add_to_non_integer_is_a_state_error(postgres_url, function):
    store = open_state_store(function, url=postgres_url)
    store.apply({b"a": b"hello"}, {})
    tx = StateTransaction(store)
    with pytest.raises(StateError, match="not a decimal integer"):
        tx.add(b"a", 1)
    tx.rollback()
    # Directly in SQL too (the overlay normally refuses first).
    with pytest.raises(StateError, match="not a decimal integer"):
        store.apply({}, {b"a": 1})
    assert store.get(b"a") == b"hello"
    store.close()


def test_concurrent_adds_are_serialized_and_every_returned_count_is_exact(postgres_url, function):
    threads_n, per_thread = 4, 40
    returned: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            store = open_state_store(function, url=postgres_url)
            for _ in range(per_thread):
                tx = StateTransaction(store)
                value = tx.add(b"count", 1)
                time.sleep(0.001)  # a guest working between the read and the commit
                tx.commit()
                returned.append(value)
            store.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    total = threads_n * per_thread
    check = open_state_store(function, url=postgres_url)
    assert check.get(b"count") == str(total).encode()
    # Serialized batches: each add saw every earlier commit, so the counts are 1..N.
    assert sorted(returned) == list(range(1, total + 1))
    check.close()


_HOLDER = """
import sys, time
from fsworker.state_store import StateTransaction, open_state_store
tx = StateTransaction(open_state_store(sys.argv[2], url=sys.argv[1]))
tx.add(b"n", 1)
print("locked", flush=True)
time.sleep(600)
"""


def test_a_replica_killed_while_holding_the_lock_releases_it(postgres_url, function):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, postgres_url, function],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store = open_state_store(function, url=postgres_url, lock_timeout_ms=200)
        with pytest.raises(StateBusy):
            store.begin()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

        def takes_lock() -> bool:
            try:
                store.begin()
            except StateBusy:
                return False
            return True

        wait_for(takes_lock, 10, "the killed holder's lock to be released")
        store.abort()
        assert store.get(b"n") is None, "the killed batch committed nothing"
        store.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_a_dropped_connection_fails_one_call_then_reconnects(postgres_url, function):
    store = open_state_store(function, url=postgres_url)
    store.apply({b"k": b"v"}, {})
    assert store._conn is not None
    pid = store._conn.info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StateError, match="PostgreSQL at"):
        store.get(b"k")
    assert store.get(b"k") == b"v"
    store.close()


def test_connection_errors_say_where_and_never_the_password():
    url = "postgresql://fs:s3cret-pw@127.0.0.1:1/statedb"
    with pytest.raises(StateError) as info:
        open_state_store("f", url=url)
    message = str(info.value)
    assert "127.0.0.1:1/statedb" in message and "s3cret-pw" not in message
    assert "\n" not in message
    with pytest.raises(StateError, match="cannot connect") as info:
        check_reachable(url)
    assert "s3cret-pw" not in str(info.value)
    assert describe_url(url) == "fs@127.0.0.1:1/statedb"


def test_a_wrong_password_is_refused_without_echoing_it(postgres_url):
    params = psycopg.conninfo.conninfo_to_dict(postgres_url)
    bad = postgres_url.replace(f":{params['password']}@", ":wrong-pw-123@")
    with pytest.raises(StateError, match="password authentication failed") as info:
        open_state_store("f", url=bad)
    assert "wrong-pw-123" not in str(info.value)
