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


def test_batches_of_two_replicas_touching_state_are_serialized(tmp_path):
    # Two replicas share a counter: the second one's batch waits for the first
    # one's commit, so the count each sees (and outputs) is exact.
    import threading

    path = tmp_path / "shared.sqlite3"
    first = StateTransaction(SqliteStateStore(path))
    assert first.add(b"the", 1) == 1
    seen: list[int] = []

    def second_replica() -> None:
        second = StateTransaction(SqliteStateStore(path))
        seen.append(second.add(b"the", 1))
        second.commit()

    waiter = threading.Thread(target=second_replica)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and seen == [], "the second replica read before the first committed"
    first.commit()
    waiter.join(10)
    assert seen == [2]
    assert SqliteStateStore(path).get(b"the") == b"2"


def test_rollback_releases_the_lock(tmp_path):
    path = tmp_path / "shared.sqlite3"
    first = StateTransaction(SqliteStateStore(path))
    first.put(b"k", b"v")
    first.rollback()
    other = StateTransaction(SqliteStateStore(path, busy_timeout_ms=200))
    assert other.add(b"n", 5) == 5  # would raise "stayed locked" if the lock were held
    other.commit()
    assert SqliteStateStore(path).get(b"k") is None
