"""The commit order (fsworker/commit.py): confirm, then commit, then acknowledge, in order.

Stand-ins for the consumer, producer and io record every call in one list, so
the tests read the order the broker would see.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pulsar
import pytest

from fscommon.latency import LatencyHistogram
from fsworker.commit import BatchResult, Committer, Counters
from fsworker.host_context import HostContext
from fsworker.pulsar_fast import Sender
from fsworker.state_store import SqliteStateStore


class Msg:
    """A received message: topic and position are all the committer reads."""

    def __init__(self, topic: str, n: int) -> None:
        self.topic, self.n = topic, n

    def topic_name(self) -> str:
        return self.topic

    def message_id(self) -> Msg:
        return self

    def serialize(self) -> bytes:
        return f"{self.topic}:{self.n}".encode()

    def __repr__(self) -> str:
        return f"{self.topic}:{self.n}"


class Calls:
    """Consumer, producer and io in one, appending (what, argument) to ``log``."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.flush_fails = False
        self.callbacks: list[Any] = []  # flush_async callbacks not yet called (manual mode)
        self.manual = False

    # consumer
    def acknowledge(self, msg: Msg) -> None:
        self.log.append(("ack", msg))

    def acknowledge_cumulative(self, msg: Msg) -> None:
        self.log.append(("ack-cumulative", msg))

    def negative_acknowledge(self, msg: Msg) -> None:
        self.log.append(("nack", msg))

    def redeliver_unacknowledged_messages(self) -> None:
        self.log.append(("rewind", None))

    # io
    def flush(self) -> None:
        self.log.append(("flush", None))
        if self.flush_fails:
            raise pulsar.Timeout("not confirmed")


class AsyncSender(Sender):
    """A Sender whose flush_async is driven by the test (as the client's thread would)."""

    def __init__(self, calls: Calls) -> None:
        super().__init__(calls)
        self.calls = calls
        self.fast = True  # as pulsar-client's producer: pipelined

    def flush_async(self, callback: Any) -> None:
        self.calls.log.append(("flush-async", None))
        if self.calls.manual:
            self.calls.callbacks.append(callback)
        else:
            callback(pulsar.Timeout("x") if self.calls.flush_fails else pulsar.Result.Ok)


def committer(calls: Calls, cumulative: bool = False, **kw: Any) -> tuple[Committer, Counters]:
    counters = Counters()
    c = Committer(
        calls,
        calls,
        counters,
        LatencyHistogram(),
        output=AsyncSender(calls),
        cumulative=cumulative,
        at_most_once=False,
        **kw,
    )
    return c, counters


def result(done: list[Msg], retry: list[Msg] = (), whole: bool = True) -> BatchResult:  # type: ignore[assignment]
    batch = list(done) + list(retry)
    return BatchResult(batch, list(done), list(retry), len(done), 0, time.perf_counter(), whole)


def test_pipelined_batches_are_acknowledged_after_their_confirmation_in_order() -> None:
    calls = Calls()
    calls.manual = True
    c, counters = committer(calls)
    a, b = [Msg("t", 1), Msg("t", 2)], [Msg("t", 3)]
    c.commit(result(a))
    assert calls.log == [("flush-async", None)]  # nothing acknowledged before the broker says so
    assert c.pending
    # The next batch is sent before the first is settled, and settling waits for it.
    calls.callbacks.pop(0)(pulsar.Result.Ok)
    c.commit(result(b))
    assert calls.log == [("flush-async", None), ("flush-async", None), ("ack", a[0]), ("ack", a[1])]
    assert not c.settle(timeout=0.01)  # b is not confirmed yet
    calls.callbacks.pop(0)(pulsar.Result.Ok)
    assert c.settle()
    assert calls.log[-1] == ("ack", b[0])
    assert counters.processed == 3 and counters.published == 3


def test_a_failed_confirmation_hands_the_whole_batch_back() -> None:
    calls = Calls()
    calls.flush_fails = True
    c, counters = committer(calls)
    batch = [Msg("t", 1), Msg("t", 2)]
    c.commit(result(batch))
    c.settle()
    assert [what for what, _ in calls.log] == ["flush-async", "nack", "nack"]
    assert counters.failed == 2 and counters.processed == 0


def test_state_or_dead_letters_confirm_synchronously_before_acknowledging() -> None:
    calls = Calls()
    c, counters = committer(calls)
    r = result([Msg("t", 1)])
    r.dead = 1  # a dead letter went to another producer: io.flush() covers them all
    assert c.commit(r) == 0
    assert calls.log == [("flush", None), ("ack", r.done[0])]
    assert counters.dead_lettered == 1 and counters.processed == 0


def test_a_stateless_batch_of_a_function_with_a_store_is_pipelined(tmp_path: Path) -> None:
    # fsd gives every function a store: "has a store" once kept every function synchronous.
    calls = Calls()
    calls.manual = True
    host = HostContext({}, SqliteStateStore(tmp_path / "state.sqlite"))
    c, _ = committer(calls, host=host)
    c.commit(result([Msg("t", 1)]))
    assert calls.log == [("flush-async", None)] and c.pending


@pytest.mark.parametrize("touch", ["read", "write"])
def test_a_batch_that_touched_state_commits_it_before_acknowledging(
    tmp_path: Path, touch: str
) -> None:
    calls = Calls()
    store = SqliteStateStore(tmp_path / "state.sqlite")
    host = HostContext({}, store)
    c, _ = committer(calls, host=host)
    if touch == "read":
        assert host.state_get(b"k") is None  # takes the store's transaction (its lock)
    else:
        host.state_put(b"k", b"v")
    r = result([Msg("t", 1)])
    c.commit(r)
    assert calls.log == [("flush", None), ("ack", r.done[0])]
    assert not host.transaction.begun  # type: ignore[union-attr]
    # The lock is released: another connection can write at once.
    other = SqliteStateStore(tmp_path / "state.sqlite", busy_timeout_ms=100)
    other.apply({b"x": b"1"}, {})
    assert store.get(b"k") == (b"v" if touch == "write" else None)


def test_a_failed_synchronous_flush_redelivers_and_acknowledges_nothing() -> None:
    calls = Calls()
    calls.flush_fails = True
    c, _ = committer(calls)
    r = result([Msg("t", 1)], [Msg("t", 2)])
    r.dead = 1
    assert c.commit(r, allow_pipeline=False) == 2
    assert [what for what, _ in calls.log] == ["flush", "nack", "nack"]


def test_effectively_once_rewinds_instead_of_handing_messages_back() -> None:
    # A nacked batch would come back behind newer outputs, whose higher sequence ids make
    # the broker drop its own (docs/guarantees.md): the subscription is rewound instead.
    calls = Calls()
    calls.flush_fails = True
    c, counters = committer(calls, cumulative=True, rewind=True)
    assert c.commit(result([Msg("t", 1), Msg("t", 2)]), allow_pipeline=False) == 2
    assert [what for what, _ in calls.log] == ["flush", "rewind"]
    assert counters.failed == 2
    calls.flush_fails = False
    calls.log.clear()
    c.commit(result([Msg("t", 1), Msg("t", 2)]), allow_pipeline=False)
    # Nothing waits for a redelivery of its own: the batch comes back whole, in order.
    assert [what for what, _ in calls.log] == ["flush", "ack-cumulative"]


def test_shared_and_key_shared_subscriptions_acknowledge_each_message() -> None:
    calls = Calls()
    c, _ = committer(calls, cumulative=False)
    batch = [Msg("t", i) for i in range(3)]
    c.commit(result(batch), allow_pipeline=False)
    assert [what for what, _ in calls.log] == ["flush", "ack", "ack", "ack"]


def test_failover_acknowledges_cumulatively_once_per_topic() -> None:
    calls = Calls()
    c, _ = committer(calls, cumulative=True)
    batch = [Msg("a", 1), Msg("b", 1), Msg("a", 2), Msg("b", 2)]
    c.commit(result(batch), allow_pipeline=False)
    assert calls.log[1:] == [("ack-cumulative", batch[2]), ("ack-cumulative", batch[3])]


@pytest.mark.parametrize("whole", [True, False])
def test_no_cumulative_ack_over_a_message_waiting_for_redelivery(whole: bool) -> None:
    calls = Calls()
    c, _ = committer(calls, cumulative=True)
    failed = Msg("t", 1)
    ok = [Msg("t", 2), Msg("t", 3)]
    c.commit(result(ok, [failed], whole=whole), allow_pipeline=False)
    # The failure is nacked; the others are acknowledged one by one (a cumulative ack would
    # take the failed message with it).
    assert ("ack-cumulative", ok[-1]) not in calls.log
    assert ("nack", failed) in calls.log and ("ack", ok[0]) in calls.log
    # Later batches of that topic too, until the failed message is settled ...
    calls.log.clear()
    later = [Msg("t", 4)]
    c.commit(result(later), allow_pipeline=False)
    assert calls.log[1:] == [("ack", later[0])]
    # ... which its redelivery does: then cumulative again.
    calls.log.clear()
    c.commit(result([failed], whole=False), allow_pipeline=False)
    c.commit(result([Msg("t", 5)]), allow_pipeline=False)
    assert calls.log[1] == ("ack", failed)
    assert calls.log[-1][0] == "ack-cumulative"


def test_a_failed_pipelined_batch_stops_cumulative_acks_over_it() -> None:
    calls = Calls()
    calls.manual = True
    c, _ = committer(calls, cumulative=True)
    first, second = [Msg("t", 1)], [Msg("t", 2)]
    c.commit(result(first))
    calls.callbacks.pop(0)(pulsar.Timeout("x"))  # the broker did not confirm the first
    c.commit(result(second))  # sent, then the first is settled: handed back
    calls.callbacks.pop(0)(pulsar.Result.Ok)
    c.settle()
    kinds = [(what, str(m)) for what, m in calls.log if what != "flush-async"]
    assert kinds == [("nack", "t:1"), ("ack", "t:2")]


def test_a_batch_split_by_suspects_is_not_acknowledged_cumulatively() -> None:
    calls = Calls()
    c, _ = committer(calls, cumulative=True)
    batch = [Msg("t", 2), Msg("t", 3)]
    c.commit(result(batch, whole=False), allow_pipeline=False)
    assert [what for what, _ in calls.log] == ["flush", "ack", "ack"]


class Redelivered(Msg):
    """A message as the broker hands it out on Failover: redelivery count always 0."""

    def redelivery_count(self) -> int:
        return 0


def test_failover_retries_are_counted_by_the_worker() -> None:
    from fsworker.redeliveries import HandedBack

    counts = HandedBack()
    msg, other = Redelivered("t", 1), Redelivered("t", 2)
    assert not counts and counts.redeliveries(msg) == 0
    counts.note([msg], [other])
    counts.note([msg], [])
    assert counts.redeliveries(msg) == 2 and counts.redeliveries(other) == 0
    counts.note([], [msg])  # done (or dead-lettered): forgotten
    assert not counts and counts.redeliveries(msg) == 0


def test_two_full_batches_may_wait_and_a_third_waits_for_the_oldest() -> None:
    import threading

    from fsworker.commit import MAX_IN_FLIGHT_MESSAGES

    calls = Calls()
    calls.manual = True
    c, _ = committer(calls)
    size = MAX_IN_FLIGHT_MESSAGES // 2
    a, b, d = ([Msg("t", k * size + i) for i in range(size)] for k in range(3))
    c.commit(result(a))
    c.commit(result(b))  # does not wait: two in flight
    assert [what for what, _ in calls.log] == ["flush-async", "flush-async"]
    # The third waits for the oldest (confirmed from another thread, as the client does).
    threading.Timer(0.05, lambda: calls.callbacks[0](pulsar.Result.Ok)).start()
    c.commit(result(d))
    assert [what for what, _ in calls.log] == ["flush-async"] * 3 + ["ack"] * size
    assert calls.log[-1] == ("ack", a[-1])
    calls.callbacks[2](pulsar.Result.Ok)  # d confirmed before b: still acknowledged after b
    assert not c.settle(timeout=0.01)
    calls.callbacks[1](pulsar.Result.Ok)
    assert c.settle()
    acked = [m.n for what, m in calls.log if what == "ack"]
    assert acked == list(range(3 * size))


def test_small_batches_do_not_wait_for_each_others_confirmation() -> None:
    # At a low rate each message is a batch; it must not wait for the one before's journal write.
    from fsworker.commit import MAX_IN_FLIGHT_BATCHES

    calls = Calls()
    calls.manual = True
    c, _ = committer(calls)
    for n in range(MAX_IN_FLIGHT_BATCHES):
        c.commit(result([Msg("t", n)]))
    assert [what for what, _ in calls.log] == ["flush-async"] * MAX_IN_FLIGHT_BATCHES
    for callback in calls.callbacks[1:]:
        callback(pulsar.Result.Ok)
    assert not c.settle(timeout=0)  # the oldest is not confirmed: nothing is acknowledged
    assert "ack" not in [what for what, _ in calls.log]
    calls.callbacks[0](pulsar.Result.Ok)
    assert c.settle(timeout=0)
    acked = [m.n for what, m in calls.log if what == "ack"]
    assert acked == list(range(MAX_IN_FLIGHT_BATCHES))
