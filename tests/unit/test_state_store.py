import threading

import pytest

from fsworker.state_store import SqliteStateStore, StateError, StateTransaction


def test_transaction_reads_its_own_writes_and_commits(tmp_path):
    store = SqliteStateStore(tmp_path / "s.sqlite3")
    tx = StateTransaction(store)
    assert tx.get(b"k") is None
    tx.put(b"k", b"")
    assert tx.get(b"k") == b"", "an empty value is not a missing key"
    assert store.get(b"k") is None, "nothing is visible before commit"
    assert tx.add(b"n", 2) == 2 and tx.add(b"n", 3) == 5
    tx.commit()
    assert store.get(b"k") == b"" and store.get(b"n") == b"5"
    tx.delete(b"k")
    tx.commit()
    assert store.get(b"k") is None


def test_savepoints_undo_a_failed_call(tmp_path):
    tx = StateTransaction(SqliteStateStore(tmp_path / "s.sqlite3"))
    tx.add(b"a", 1)
    sp = tx.savepoint()
    tx.add(b"a", 10)
    tx.put(b"b", b"x")
    tx.rollback_to(sp)
    assert tx.get(b"a") == b"1" and tx.get(b"b") is None
    tx.commit()
    assert tx.store.get(b"a") == b"1"


def test_add_to_non_integer_is_a_state_error(tmp_path):
    tx = StateTransaction(SqliteStateStore(tmp_path / "s.sqlite3"))
    tx.put(b"a", b"hello")
    with pytest.raises(StateError, match="not a decimal integer"):
        tx.add(b"a", 1)


def test_concurrent_adds_from_two_connections_lose_nothing(tmp_path):
    path = tmp_path / "s.sqlite3"
    SqliteStateStore(path).close()

    def worker():
        store = SqliteStateStore(path)
        for _ in range(200):
            tx = StateTransaction(store)
            tx.add(b"count", 1)
            tx.commit()
        store.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SqliteStateStore(path).get(b"count") == b"400"


def test_scan_by_prefix(tmp_path):
    store = SqliteStateStore(tmp_path / "s.sqlite3")
    store.apply({b"w:a": b"1", b"w:b": b"2", b"x": b"3"}, {})
    assert store.scan(b"w:", 10) == [(b"w:a", b"1"), (b"w:b", b"2")]
    assert store.scan(b"", 1) == [(b"w:a", b"1")]


def test_replicas_opening_a_fresh_database_at_once_all_succeed(tmp_path):
    path = tmp_path / "fresh.sqlite3"
    errors = []

    def open_it():
        try:
            SqliteStateStore(path).close()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
