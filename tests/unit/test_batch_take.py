"""fsworker/batch_take.py: message by message at low rates, whole batches under load."""

from __future__ import annotations

from collections import deque

import pulsar

from fsworker.batch_take import BatchTaker


class Consumer:
    """A queue of messages with the two ways the binding takes them, and a log of calls."""

    def __init__(self, queued: int, whole: int) -> None:
        self.queue: deque[int] = deque(range(queued))
        self.whole = whole
        self.calls: list[str] = []

    def receive(self, timeout_ms: int) -> int:
        self.calls.append(f"receive({timeout_ms})")
        if not self.queue:
            raise pulsar.Timeout()
        return self.queue.popleft()

    def batch_receive(self) -> list[int]:
        self.calls.append("batch_receive")
        return [self.queue.popleft() for _ in range(min(self.whole, len(self.queue)))]


def test_a_backlog_is_taken_whole_after_the_first_full_batch_then_one_by_one_again() -> None:
    consumer = Consumer(queued=25, whole=10)
    taker = BatchTaker(consumer, max_batch=10, whole_size=10)
    first = taker.take(100)
    assert first == list(range(10)) and taker.loaded  # one by one: the queue was full
    assert taker.take(100) == list(range(10, 20)) and consumer.calls[-1] == "batch_receive"
    consumer.calls.clear()
    assert taker.take(100) == list(range(20, 25))  # whole, but not full: the load is over
    assert consumer.calls == ["batch_receive"] and not taker.loaded
    consumer.queue.append(99)
    consumer.calls.clear()
    assert taker.take(100) == [99]  # a lone message: back to a blocking receive
    assert consumer.calls == ["receive(100)", "receive(0)"]
    assert taker.take(100) == [] and consumer.calls[-1] == "receive(100)"  # idle: it blocks
    assert taker.whole_takes == 2


def test_a_batch_smaller_than_a_whole_one_never_switches() -> None:
    consumer = Consumer(queued=30, whole=10)
    taker = BatchTaker(consumer, max_batch=4, whole_size=10)
    for start in range(0, 30, 4):
        assert taker.take(100) == list(range(start, min(start + 4, 30)))
    assert "batch_receive" not in consumer.calls and taker.whole_takes == 0


def test_a_consumer_without_batch_receive_is_taken_message_by_message() -> None:
    class Plain:
        def __init__(self) -> None:
            self.inner = Consumer(queued=20, whole=10)
            self.receive = self.inner.receive

    plain = Plain()
    taker = BatchTaker(plain, max_batch=10, whole_size=10)
    assert taker.take(100) == list(range(10)) and not taker.loaded
    assert taker.take(100) == list(range(10, 20)) and taker.whole_takes == 0
