"""In-process stand-ins for what the processing loop uses of Pulsar, for ``fsctl run``.

fsworker/loop.py's ``ProcessingLoop`` takes a ``PulsarIO`` and calls a small
part of it: ``consumer.receive/acknowledge/negative_acknowledge``, ``output``
and ``dedup_output(topic)`` (``send_async``), ``dead_letter(topic)``,
``flush()`` and ``spec.output``; and of each message ``data``, ``properties``,
``partition_key``, ``event_timestamp``, ``topic_name``, ``redelivery_count``
and ``message_id`` (``serialize``, ``str``, ledger/entry/batch for
effectively-once sequence ids). These classes offer exactly that, so a local
run goes through the worker's own decode, guest call, error kinds, retries,
dead letters and state commit, with no broker.

Differences from a broker, on purpose: a negatively acknowledged message
comes back at once (no ``retry_delay_ms``) and first in the queue, so its
attempts run one after the other; everything "published" is handed to a
``RunSink`` instead, and nothing needs confirming (``flush`` does nothing).
The loop must take one message per batch (``max_batch=1``): the sink then
knows which input every output, failure and guest log line belongs to.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pulsar

from fsworker.local_input import LocalInput


class RunSink(Protocol):
    """Where a local run's stand-ins report what the loop did with each message."""

    def received(self, msg: LocalMessage) -> None:
        """The loop took ``msg`` (a first attempt or a retry)."""

    def published(self, record: bytes, kwargs: dict[str, Any]) -> None:
        """The loop published an output record of the message it took last."""

    def dead_lettered(self, data: bytes, properties: dict[str, str]) -> None:
        """The loop gave up on a message (the dead-letter properties say why)."""

    def drained(self) -> None:
        """No message is left: the loop should stop."""


class LocalMessageId:
    """A message id that is unique per run (the state's done-marks are keyed by it)."""

    def __init__(self, run: str, index: int) -> None:
        self._run = run
        self.index = index

    def serialize(self) -> bytes:
        """Unique across runs, so marks left in a --state file never match a later run."""
        return f"local:{self._run}:{self.index}".encode()

    def ledger_id(self) -> int:
        """No ledger: 0."""
        return 0

    def entry_id(self) -> int:
        """The input's number, so effectively-once sequence ids grow as on a topic."""
        return self.index

    def batch_index(self) -> int:
        """Not in a batch."""
        return -1

    def partition(self) -> int:
        """Not partitioned."""
        return -1

    def __str__(self) -> str:
        return f"local:{self.index}"


class LocalMessage:
    """One input as the loop sees a ``pulsar.Message``."""

    def __init__(self, item: LocalInput, index: int, run: str) -> None:
        self.item = item
        self.index = index  # 1-based position in the input
        self.redeliveries = 0
        self._id = LocalMessageId(run, index)

    def data(self) -> bytes:
        """The payload."""
        return self.item.data

    def properties(self) -> dict[str, str]:
        """The input's properties (a copy)."""
        return dict(self.item.properties)

    def partition_key(self) -> str:
        """The key, or '' as the Pulsar client gives for none."""
        return self.item.key or ""

    def event_timestamp(self) -> int:
        """Event time in ms, 0 when not set."""
        return self.item.event_time

    def publish_timestamp(self) -> int:
        """Not published anywhere: 0."""
        return 0

    def topic_name(self) -> str:
        """The topic the input names (json-lines ``topic``), else a fixed local name."""
        return self.item.topic

    def redelivery_count(self) -> int:
        """How many times it was handed back and taken again."""
        return self.redeliveries

    def message_id(self) -> LocalMessageId:
        """Stable across its redeliveries."""
        return self._id


class LocalConsumer:
    """Hands out the inputs one by one; retries go first, at once."""

    def __init__(self, inputs: Iterator[LocalInput], sink: RunSink, max_redeliveries: int):
        self._inputs = inputs
        self._sink = sink
        self._retry: deque[LocalMessage] = deque()
        self._run = uuid.uuid4().hex[:12]
        self._count = 0
        # A message handed back more often than retries allow was not failed by the guest
        # but by publishing or committing state (the loop retries those for ever).
        self._max_redeliveries = max_redeliveries

    def receive(self, timeout_millis: int | None = None) -> LocalMessage:
        """The next retry or the next input; when none is left, tell the sink and time out."""
        if self._retry:
            msg = self._retry.popleft()
        else:
            item = next(self._inputs, None)
            if item is None:
                self._sink.drained()
                raise pulsar.Timeout("no more input")
            self._count += 1
            msg = LocalMessage(item, self._count, self._run)
        self._sink.received(msg)
        return msg

    def acknowledge(self, msg: LocalMessage) -> None:
        """Done with it (processed, or dead-lettered)."""

    def negative_acknowledge(self, msg: LocalMessage) -> None:
        """Retry it next, with its redelivery count one higher."""
        msg.redeliveries += 1
        if msg.redeliveries > self._max_redeliveries:
            raise LocalRunStuck(
                f"input {msg.index} ({msg.item.origin}) was retried {msg.redeliveries} times "
                f"without the guest failing it: its outputs or state could not be committed "
                f"(see the log lines above)"
            )
        self._retry.appendleft(msg)

    @property
    def run_id(self) -> str:
        """What makes this run's message ids unique."""
        return self._run

    @property
    def taken(self) -> int:
        """How many distinct inputs were taken so far."""
        return self._count


class LocalRunStuck(Exception):
    """A message cannot be committed (state store error): retrying would never end."""


class LocalProducer:
    """Outputs: each record goes to the sink with the properties the loop gives it."""

    def __init__(self, sink: RunSink) -> None:
        self._sink = sink

    def send_async(self, record: bytes, callback: Any, **kwargs: Any) -> None:
        """Hand the record to the sink (nothing to confirm)."""
        self._sink.published(record, kwargs)

    def flush(self) -> None:
        """Nothing is pending."""


class DeadLetterProducer:
    """The dead-letter topic: the sink learns the kind, error and attempts of a failure."""

    def __init__(self, sink: RunSink) -> None:
        self._sink = sink

    def send_async(self, data: bytes, callback: Any, **kwargs: Any) -> None:
        """Report the failure with the dead-letter properties the worker set."""
        self._sink.dead_lettered(data, dict(kwargs.get("properties") or {}))

    def flush(self) -> None:
        """Nothing is pending."""


@dataclass(frozen=True)
class LocalSpec:
    """The part of the worker spec the loop reads through ``io.spec``."""

    function: str
    output: str | None = "local-output"


class LocalIO:
    """What ``ProcessingLoop`` uses of ``PulsarIO``, in process."""

    def __init__(self, function: str, consumer: LocalConsumer, sink: RunSink) -> None:
        self.spec = LocalSpec(function)
        self.consumer = consumer
        self.output = LocalProducer(sink)
        self._dead = DeadLetterProducer(sink)

    def dedup_output(self, input_topic: str) -> LocalProducer:
        """effectively-once: the same output (there is no broker to deduplicate)."""
        return self.output

    def dead_letter(self, input_topic: str) -> DeadLetterProducer:
        """One dead-letter stand-in for every input topic."""
        return self._dead

    def flush(self) -> None:
        """Nothing to wait for."""

    def close(self) -> None:
        """Nothing to close."""


class SilentLink:
    """The fsd link: a local run has no fsd to send heartbeats to."""

    def send(self, kind: Any, **fields: Any) -> None:
        """Drop the event."""

    def close(self) -> None:
        """Nothing to close."""
