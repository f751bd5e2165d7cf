"""Numbered message streams for loss and duplicate counting, through the real broker."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pulsar

from fscommon.logs import silent_pulsar_logger


def client(url: str) -> pulsar.Client:
    return pulsar.Client(url, operation_timeout_seconds=30, logger=silent_pulsar_logger())


def person(i: int) -> bytes:
    """Input record number i for the basic example."""
    return json.dumps({"name": f"m-{i}", "money": i}, separators=(",", ":")).encode()


def paced(count: int, rate: float) -> Iterator[int]:
    """0..count-1, the caller's work for each taking its place at about ``rate`` per second."""
    started = time.monotonic()
    for i in range(count):
        yield i
        ahead = started + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


class StreamProducer(threading.Thread):
    """Produces records 0..count-1 at about ``rate`` per second, then flushes."""

    def __init__(self, url: str, topic: str, count: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.topic, self.count, self.rate = url, topic, count, rate
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        c = client(self.url)
        try:
            producer = c.create_producer(
                self.topic, batching_enabled=True, batching_max_publish_delay_ms=5,
                block_if_queue_full=True,
            )  # fmt: skip
            for i in paced(self.count, self.rate):
                producer.send_async(person(i), None)
                self.sent = i + 1
            producer.flush()
            producer.close()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            c.close()

    def finish(self, timeout: float = 120.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "producer did not finish"
        assert self.error is None, f"producer failed: {self.error!r}"


class OutputCollector:
    """A durable subscription on the output topic, made before anything is produced."""

    def __init__(self, url: str, topic: str) -> None:
        self._client = client(url)
        self._consumer = self._client.subscribe(
            topic,
            "test-collector",
            consumer_type=pulsar.ConsumerType.Exclusive,
            initial_position=pulsar.InitialPosition.Earliest,
        )
        self.seen: Counter[str] = Counter()

    def collect_until(self, count: int, timeout: float, quiet: float = 1.0) -> Counter[str]:
        """Read until ``count`` distinct records arrived (or timeout), then ``quiet`` more."""
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            self._drain(200)
        # Late duplicates would arrive right behind: give them a moment to show.
        quiet_until = time.monotonic() + quiet
        while time.monotonic() < quiet_until:
            self._drain(100)
        return self.seen

    def _drain(self, timeout_ms: int) -> None:
        try:
            msg = self._consumer.receive(timeout_ms)
        except pulsar.Timeout:
            return
        self.seen[json.loads(msg.data())["name"]] += 1
        self._consumer.acknowledge(msg)

    def close(self) -> None:
        self._client.close()


def report(seen: Counter[str], count: int) -> tuple[list[str], int]:
    """(missing names, duplicate count), printed for the test log."""
    missing = [f"m-{i}" for i in range(count) if f"m-{i}" not in seen]
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    print(f"records: {count} produced, {len(seen)} distinct out, {len(missing)} lost, "
          f"{duplicates} duplicates")  # fmt: skip
    return missing, duplicates


class Reader:
    """Everything on a topic from the start, with properties (a durable test subscription)."""

    def __init__(self, url: str, topic: str) -> None:
        self._client = client(url)
        self._consumer = self._client.subscribe(
            topic, "test-reader", initial_position=pulsar.InitialPosition.Earliest
        )
        self.messages: list[pulsar.Message] = []

    def wait(self, count: int, timeout: float = 60) -> list[pulsar.Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            try:
                msg = self._consumer.receive(200)
            except pulsar.Timeout:
                continue
            self.messages.append(msg)
            self._consumer.acknowledge(msg)
        assert len(self.messages) >= count, f"got {len(self.messages)} of {count} messages"
        return self.messages

    def more_within(self, seconds: float) -> list[pulsar.Message]:
        """Messages beyond those already read that arrive within ``seconds``."""
        before = len(self.messages)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                msg = self._consumer.receive(200)
            except pulsar.Timeout:
                continue
            self.messages.append(msg)
        return self.messages[before:]

    def close(self) -> None:
        self._client.close()


def send(url: str, topic: str, payloads: list[bytes], **kwargs) -> None:
    """Publish ``payloads`` in order, each confirmed before the next (``kwargs``: send's)."""
    c = client(url)
    try:
        producer = c.create_producer(topic)
        for payload in payloads:
            producer.send(payload, **kwargs)
        producer.close()
    finally:
        c.close()
