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
Before a guest call that may take long (fsworker/guest.py ``before_call``), the
loop announces in a beat how long the call may take under its time limit
(``busy_ms``), so fsd does not take a guest working inside its limits for a hung
worker (docs/abi.md, "Time limits and the heartbeat").

With an attempt ledger (fsworker/attempts.py) the ids of the messages about to
be called are noted on disk first, so an attempt that ends with the worker dying
still counts: such messages ("suspects") are called one at a time, and once
their attempts are used up they are dead-lettered with ``fs-error-kind=crash``.
At-most-once skips a message a worker on this host already took.
"""

from __future__ import annotations

import math
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
from fsworker.attempts import AttemptLedger
from fsworker.codec import SchemaError, input_decoder, output_encoder
from fsworker.done_marks import DoneMarks
from fsworker.fsd_link import FsdLink
from fsworker.guest import Guest, GuestError
from fsworker.host_context import HostContext, OutputMeta
from fsworker.pulsar_io import PulsarIO
from fsworker.records import dead_letter, message_meta, sequence_id
from fsworker.state_store import StateError

log = structlog.get_logger("fsworker.loop")

RECEIVE_TIMEOUT_MS = 100
FUNCTION_PROPERTY = "fs-function"
# fs-error-kind of a message whose attempts all ended with the worker dying.
CRASH = "crash"

Failure = tuple[str, str]  # (fs-error-kind, one-line error)


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
        ledger: AttemptLedger | None = None,
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
        self._ledger = ledger
        # Exactly-once state (fsworker/done_marks.py) where the function has a store.
        self._marks = (
            DoneMarks(host.transaction)
            if host is not None and host.transaction is not None
            else None
        )
        self._next_beat = 0.0
        self._covered_until = 0.0  # the last beat announced guest calls up to this time
        if options.timeout_ms is not None:
            guest.before_call = self._cover
        self.counters = Counters()
        # Per-message processing latency (fscommon/latency.py), one update per batch.
        self.latency = LatencyHistogram()

    def stop(self) -> None:
        """Ask the loop to end after the current batch (safe from a signal handler)."""
        self._stopping = True

    def heartbeat(self, busy: float = 0.0) -> dict[str, Any]:
        """The heartbeat's fields: counters, latency, fuel, busy time (fscommon/protocol.py)."""
        fuel_used = getattr(self._guest, "fuel_used", None)
        return heartbeat_fields(
            self.counters.as_dict(),
            list(self.latency.counts),
            self.latency.sum,
            fuel_used,
            math.ceil(busy * 1000),
        )

    def _beat(self, now: float) -> None:
        self._link.send(EventKind.HEARTBEAT, **self.heartbeat(max(0.0, self._covered_until - now)))
        self._next_beat = now + self._heartbeat_interval

    def _cover(self, seconds: float) -> None:
        """Before a guest call that may take ``seconds``: make sure fsd was told.

        A beat announces the call plus one heartbeat interval, so the calls that
        follow within that interval need no beat of their own.
        """
        now = time.monotonic()
        if now + seconds > self._covered_until:
            self._covered_until = now + seconds + self._heartbeat_interval
            self._beat(now)

    def run(self) -> None:
        """Process batches until stopped."""
        clock = time.perf_counter
        observe = self.latency.observe
        while not self._stopping:
            now = time.monotonic()
            if now >= self._next_beat:
                self._beat(now)
            batch = self._take_batch()
            if batch:
                started = clock()
                self._handle(batch)
                # Every message of the batch was acknowledged at the end of it.
                observe(clock() - started, len(batch))
        if self._ledger is not None:
            self._ledger.close()
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
        ledger = self._ledger
        if ledger is None:
            self._run(batch, [m.redelivery_count() + 1 for m in batch])
            return
        mids = [m.message_id().serialize() for m in batch]
        known = ledger.known()
        if self._at_most_once:
            self._take_at_most_once(ledger, batch, mids, known)
            return
        limit = self._options.max_retries + 1
        normal: list[tuple[pulsar.Message, bytes, int]] = []
        suspects: list[tuple[pulsar.Message, bytes, int]] = []
        for msg, mid in zip(batch, mids, strict=True):
            seen = known.get(mid)
            if seen is None:
                normal.append((msg, mid, msg.redelivery_count() + 1))
            else:
                suspects.append((msg, mid, max(seen, msg.redelivery_count()) + 1))
        if normal:
            ledger.begin([(mid, n) for _, mid, n in normal])
            self._run([m for m, _, _ in normal], [n for _, _, n in normal])
        # A suspect goes alone: if it kills the worker again, only it is blamed.
        for msg, mid, attempt in suspects:
            if attempt > limit:
                # Every attempt it was given ended with the worker dying.
                error = (
                    f"the worker process died while this message was in flight (a native "
                    f"crash, an abort, or a kill after a hang); {attempt - 1} attempts in all"
                )
                self._run([msg], [attempt - 1], {0: (CRASH, error)})
                ledger.settle(mid, None)
                continue
            ledger.begin([(mid, attempt)])
            with ledger.suspect_call():
                retried = self._run([msg], [attempt])
            ledger.settle(mid, attempt if retried else None)

    def _take_at_most_once(
        self,
        ledger: AttemptLedger,
        batch: list[pulsar.Message],
        mids: list[bytes],
        known: dict[bytes, int],
    ) -> None:
        """Note the ids as taken before acknowledging; skip what a dead worker took."""
        fresh = [(m, mid) for m, mid in zip(batch, mids, strict=True) if mid not in known]
        if len(fresh) < len(batch):
            for msg, mid in zip(batch, mids, strict=True):
                if mid in known:
                    self._consumer.acknowledge(msg)
            log.warning(
                "skipped messages a worker took before it died (at-most-once)",
                skipped=len(batch) - len(fresh),
            )
        if fresh:
            ledger.begin([(mid, 1) for _, mid in fresh])
            self._run([m for m, _ in fresh], [1] * len(fresh))

    def _run(
        self,
        batch: list[pulsar.Message],
        attempts: list[int],
        preset: dict[int, Failure] | None = None,
    ) -> int:
        """Call, publish, commit, acknowledge one batch; how many were handed back to retry.

        ``attempts[i]`` is the attempt number of ``batch[i]``; ``preset`` failures
        are not called.
        """
        consumer = self._consumer
        if self._at_most_once:
            for msg in batch:
                consumer.acknowledge(msg)
        elif self._marks is not None and not preset:
            batch, attempts = self._skip_done(batch, attempts)
            if not batch:
                return 0
        payloads: list[bytes | None] = []
        failures: dict[int, Failure] = dict(preset) if preset else {}
        decode = self._decode
        for i, msg in enumerate(batch):
            if i in failures:
                payloads.append(None)
                continue
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
        overrides = self._guest.last_output_meta if len(failures) < len(batch) else None

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
            if self._at_most_once or attempts[i] > self._options.max_retries:
                dead_letter(self._io, msg, *failure, attempts[i], self._function, self._replica)
                dead += 1
                done.append(msg)
            else:
                log.info(
                    "message failed; will be retried",
                    error_kind=failure[0],
                    error=failure[1],
                    message_id=str(msg.message_id()),
                    attempt=attempts[i],
                )
                retry.append(msg)

        try:
            if published or dead:
                self._io.flush()
            # State written while processing is durable before any input is acknowledged.
            if self._host is not None and self._host.transaction is not None:
                if self._marks is not None:
                    self._marks.mark([m.message_id().serialize() for m in done])
                self._host.transaction.commit()
        except (pulsar.PulsarException, StateError, sqlite3.Error) as exc:
            log.error("publishing or committing state failed; redelivering", error=str(exc))
            if self._host is not None and self._host.transaction is not None:
                self._host.transaction.rollback()
            if not self._at_most_once:
                for msg in batch:
                    consumer.negative_acknowledge(msg)
            self.counters.failed += len(batch)
            return len(batch)
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
        return len(retry)

    def _skip_done(
        self, batch: list[pulsar.Message], attempts: list[int]
    ) -> tuple[list[pulsar.Message], list[int]]:
        """Acknowledge, without processing, what a batch already committed (a redelivery)."""
        assert self._marks is not None
        done = self._marks.already_done([m.message_id().serialize() for m in batch])
        if not done:
            return batch, attempts
        kept: list[pulsar.Message] = []
        kept_attempts: list[int] = []
        for msg, attempt in zip(batch, attempts, strict=True):
            if msg.message_id().serialize() in done:
                self._consumer.acknowledge(msg)
            else:
                kept.append(msg)
                kept_attempts.append(attempt)
        log.warning(
            "acknowledged messages whose batch had committed its state before a crash",
            skipped=len(done),
        )
        self.counters.processed += len(done)
        return kept, kept_attempts

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
        if len(failures) == len(batch):
            return [None] * len(batch)  # nothing to call
        if not failures:  # the common case: no index bookkeeping on the hot path
            metas = [message_meta(m) for m in batch] if guest.uses_message_metadata else None
            return guest.call_batch(payloads, metas)  # type: ignore[arg-type]
        index = [i for i, p in enumerate(payloads) if p is not None]
        metas = [message_meta(batch[i]) for i in index] if guest.uses_message_metadata else None
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
