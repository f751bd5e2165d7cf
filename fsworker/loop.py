"""The processing loop: take what is queued, call the guest on the batch, publish, confirm, ack.

At-least-once without a Python callback per message (see DESIGN): results are
sent with ``send_async(..., None)``; ``flush()`` returns once the broker has
confirmed every one of them (and raises if a send failed), and only then are
the inputs acknowledged. A failed flush negatively acknowledges the whole
batch, so the broker redelivers it. The client groups acknowledgements on the
wire (100 ms), which is the bulk acknowledgement the Python client offers.

A message that fails (guest trap, time or memory limit, error result, schema
mismatch) is negatively acknowledged and redelivered after ``retry_delay_ms``;
once it has been redelivered ``max_retries`` times, it goes to the dead-letter
topic with properties saying why, and is acknowledged. Nothing is dropped.

Heartbeats are sent from this loop, so a loop stuck in the guest stops them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulsar
import structlog

from fscommon.function_options import FunctionOptions
from fscommon.latency import LatencyHistogram
from fscommon.protocol import EventKind, heartbeat_fields
from fsworker.codec import SchemaError, input_decoder, output_encoder
from fsworker.fsd_link import FsdLink
from fsworker.guest import Guest, GuestError
from fsworker.host_context import HostContext, MessageMeta, OutputMeta
from fsworker.pulsar_io import PulsarIO
from fsworker.state_store import StateError

log = structlog.get_logger("fsworker.loop")

RECEIVE_TIMEOUT_MS = 100
FUNCTION_PROPERTY = "fs-function"


@dataclass
class Counters:
    """Per-replica message counters, reported in heartbeats."""

    received: int = 0
    processed: int = 0  # inputs whose outputs were confirmed (or that had none)
    failed: int = 0  # failed attempts (each retry counts)
    retried: int = 0  # failed attempts handed back for redelivery
    dead_lettered: int = 0
    published: int = 0  # output records confirmed

    def as_dict(self) -> dict[str, int]:
        """For the heartbeat event."""
        return dict(self.__dict__)


def sequence_id(msg: pulsar.Message, k: int) -> int:
    """A producer sequence id that grows with the input's position (effectively-once).

    Packs ledger id (23 bits), entry id (20 bits), batch index + 1 (12 bits)
    and the output's index for that input (8 bits): monotonic along one topic
    as long as ledger ids stay below 2^23, entries per ledger below 2^20,
    batches below 4095 messages and outputs per input below 256 (docs/guarantees.md).
    """
    mid = msg.message_id()
    return (
        ((mid.ledger_id() & 0x7FFFFF) << 40)
        | ((mid.entry_id() & 0xFFFFF) << 20)
        | (((mid.batch_index() + 1) & 0xFFF) << 8)
        | (k & 0xFF)
    )


class ProcessingLoop:
    """Runs until ``stop()`` is called, then finishes the batch in hand and returns."""

    def __init__(
        self,
        guest: Guest,
        io: PulsarIO,
        link: FsdLink,
        options: FunctionOptions,
        function: str,
        replica: int,
        max_batch: int,
        heartbeat_interval: float,
        after_publish: Callable[[], None] | None = None,
        host: HostContext | None = None,
    ) -> None:
        self._guest = guest
        self._io = io
        self._consumer = io.consumer
        self._link = link
        self._options = options
        self._function = function
        self._replica = replica
        self._max_batch = max_batch
        self._heartbeat_interval = heartbeat_interval
        self._after_publish = after_publish  # a test hook: runs between flush and ack
        self._host = host
        self._decode = input_decoder(options)
        self._encode = output_encoder(options)
        self._effectively_once = options.guarantee == "effectively-once"
        self._at_most_once = options.guarantee == "at-most-once"
        passing = set(options.pass_through)
        self._pass_key = "key" in passing
        self._pass_props = "properties" in passing
        self._pass_time = "event-time" in passing
        self._stopping = False
        self.counters = Counters()
        # Per-message processing latency (fscommon/latency.py), one update per batch.
        self.latency = LatencyHistogram()

    def stop(self) -> None:
        """Ask the loop to end after the current batch (safe from a signal handler)."""
        self._stopping = True

    def heartbeat(self) -> dict[str, Any]:
        """The heartbeat's fields: counters, latency histogram, fuel (fscommon/protocol.py)."""
        fuel_used = getattr(self._guest, "fuel_used", None)
        return heartbeat_fields(
            self.counters.as_dict(), list(self.latency.counts), self.latency.sum, fuel_used
        )

    def run(self) -> None:
        """Process batches until stopped."""
        next_beat = 0.0
        clock = time.perf_counter
        observe = self.latency.observe
        while not self._stopping:
            now = time.monotonic()
            if now >= next_beat:
                self._link.send(EventKind.HEARTBEAT, **self.heartbeat())
                next_beat = now + self._heartbeat_interval
            batch = self._take_batch()
            if batch:
                started = clock()
                self._handle(batch)
                # Every message of the batch was acknowledged at the end of it.
                observe(clock() - started, len(batch))
        self._link.send(EventKind.HEARTBEAT, **self.heartbeat())

    def _take_batch(self) -> list[pulsar.Message]:
        """Block briefly for one message, then take whatever else is already queued."""
        receive = self._consumer.receive
        try:
            first = receive(RECEIVE_TIMEOUT_MS)
        except pulsar.Timeout:
            return []
        batch = [first]
        limit = self._max_batch
        while len(batch) < limit:
            try:
                batch.append(receive(0))
            except pulsar.Timeout:
                break
        self.counters.received += len(batch)
        return batch

    def _handle(self, batch: list[pulsar.Message]) -> None:
        consumer = self._consumer
        if self._at_most_once:
            for msg in batch:
                consumer.acknowledge(msg)
        payloads: list[bytes | None] = []
        failures: dict[int, tuple[str, str]] = {}
        decode = self._decode
        for i, msg in enumerate(batch):
            data = msg.data()
            if decode is not None:
                try:
                    data = decode(data)
                except SchemaError as exc:
                    failures[i] = ("schema", str(exc))
                    payloads.append(None)
                    continue
            payloads.append(data)
        outcomes = self._call_guest(batch, payloads, failures)
        overrides = self._guest.last_output_meta

        done: list[pulsar.Message] = []
        retry: list[pulsar.Message] = []
        dead = 0
        published = 0
        for i, msg in enumerate(batch):
            failure = failures.get(i)
            if failure is None:
                outcome = outcomes[i]
                if isinstance(outcome, GuestError):
                    failure = (outcome.kind, str(outcome))
                else:
                    try:
                        override = overrides[i] if overrides is not None else None
                        published += self._publish(msg, outcome, override)
                    except SchemaError as exc:
                        failure = ("schema", str(exc))
            if failure is None:
                done.append(msg)
                continue
            self.counters.failed += 1
            if self._at_most_once or msg.redelivery_count() >= self._options.max_retries:
                self._dead_letter(msg, *failure)
                dead += 1
                done.append(msg)
            else:
                log.info(
                    "message failed; will be retried",
                    error_kind=failure[0],
                    error=failure[1],
                    message_id=str(msg.message_id()),
                    attempt=msg.redelivery_count() + 1,
                )
                retry.append(msg)

        try:
            if published or dead:
                self._io.flush()
            # State written while processing is durable before any input is acknowledged.
            if self._host is not None and self._host.transaction is not None:
                self._host.transaction.commit()
        except (pulsar.PulsarException, StateError, sqlite3.Error) as exc:
            log.error("publishing or committing state failed; redelivering", error=str(exc))
            if self._host is not None and self._host.transaction is not None:
                self._host.transaction.rollback()
            if not self._at_most_once:
                for msg in batch:
                    consumer.negative_acknowledge(msg)
            self.counters.failed += len(batch)
            return
        if self._after_publish is not None:
            self._after_publish()
        if not self._at_most_once:
            for msg in done:
                consumer.acknowledge(msg)
            for msg in retry:
                consumer.negative_acknowledge(msg)
        self.counters.processed += len(done) - dead
        self.counters.retried += len(retry)
        self.counters.dead_lettered += dead
        self.counters.published += published

    def _call_guest(
        self,
        batch: list[pulsar.Message],
        payloads: list[bytes | None],
        failures: dict[int, tuple[str, str]],
    ) -> list[Any]:
        """Run the guest on the decodable payloads; outcomes line up with ``payloads``.

        ``guest.last_output_meta`` is re-indexed the same way.
        """
        guest = self._guest
        if not failures:  # the common case: no index bookkeeping on the hot path
            metas = [_message_meta(m) for m in batch] if guest.uses_message_metadata else None
            return guest.call_batch(payloads, metas)  # type: ignore[arg-type]
        index = [i for i, p in enumerate(payloads) if p is not None]
        metas = [_message_meta(batch[i]) for i in index] if guest.uses_message_metadata else None
        results = guest.call_batch([payloads[i] for i in index], metas)  # type: ignore[misc]
        outcomes: list[Any] = [None] * len(payloads)
        for i, result in zip(index, results, strict=True):
            outcomes[i] = result
        if guest.last_output_meta is not None:
            spread: list[Any] = [None] * len(payloads)
            for i, meta in zip(index, guest.last_output_meta, strict=True):
                spread[i] = meta
            guest.last_output_meta = spread
        return outcomes

    def _publish(
        self, msg: pulsar.Message, outputs: Sequence[bytes], override: OutputMeta | None
    ) -> int:
        """Send the outputs of one input (encoded first, so a bad one sends nothing).

        What the guest set through the host API (``override``) replaces the
        passed-through key and event time, and adds to the properties.
        """
        if not outputs:
            return 0
        encode = self._encode
        records = [encode(o) for o in outputs] if encode is not None else outputs
        if self._effectively_once and self._io.spec.output:
            producer = self._io.dedup_output(msg.topic_name())
        else:
            producer = self._io.output
            if producer is None:
                return 0  # a sink function: nothing to publish
        props = dict(msg.properties()) if self._pass_props else {}
        props[FUNCTION_PROPERTY] = self._function
        kwargs: dict[str, Any] = {"properties": props}
        if self._pass_key:
            key = msg.partition_key()
            if key:
                kwargs["partition_key"] = key
        if self._pass_time:
            event_time = msg.event_timestamp()
            if event_time:
                kwargs["event_timestamp"] = event_time
        if override is not None:
            props.update(override.properties)
            if override.key is not None:
                kwargs["partition_key"] = override.key
            if override.event_time:
                kwargs["event_timestamp"] = override.event_time
        for k, record in enumerate(records):
            if self._effectively_once:
                kwargs["sequence_id"] = sequence_id(msg, k)
            producer.send_async(record, None, **kwargs)
        return len(records)

    def _dead_letter(self, msg: pulsar.Message, kind: str, error: str) -> None:
        props = dict(msg.properties())
        props.update(
            {
                "fs-error-kind": kind,
                "fs-error": error[:2000],
                "fs-function": self._function,
                "fs-replica": str(self._replica),
                "fs-original-message-id": str(msg.message_id()),
                "fs-original-topic": msg.topic_name(),
                "fs-attempts": str(msg.redelivery_count() + 1),
            }
        )
        kwargs: dict[str, Any] = {"properties": props}
        key = msg.partition_key()
        if key:
            kwargs["partition_key"] = key
        self._io.dead_letter(msg.topic_name()).send_async(msg.data(), None, **kwargs)
        log.warning(
            "message dead-lettered",
            error_kind=kind,
            error=error,
            message_id=str(msg.message_id()),
            topic=msg.topic_name(),
            attempts=msg.redelivery_count() + 1,
        )


def _message_meta(msg: pulsar.Message) -> MessageMeta:
    """What the guest may read about its current input."""
    return MessageMeta(
        key=msg.partition_key() or None,
        properties=dict(msg.properties()),
        event_time=msg.event_timestamp() or 0,
    )
