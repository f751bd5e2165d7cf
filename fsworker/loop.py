"""The processing loop: take what is queued, call the guest on the batch, publish, commit.

At-least-once without a Python callback per message (see DESIGN): the commit
order (outputs confirmed, state committed, inputs acknowledged) lives in
fsworker/commit.py; under load one batch's confirmation overlaps the next batch.

A message that fails (guest trap, time or memory limit, error result, schema
mismatch) is negatively acknowledged and redelivered after ``retry_delay_ms``;
once it has been redelivered ``max_retries`` times, it goes to the dead-letter
topic with properties saying why, and is acknowledged. Nothing is dropped.

Heartbeats come from this loop, so a loop stuck in the guest stops them; before a
guest call that may take long it announces how long (``busy_ms``), so fsd does not
take a guest within its limits for a hung worker (docs/abi.md, "Time limits ...").

With an attempt ledger (fsworker/attempts.py) the ids of the messages about to
be called are noted on disk first, so an attempt that ends with the worker dying
still counts: such messages ("suspects") are called one at a time, and once
their attempts are used up they are dead-lettered with ``fs-error-kind=crash``.
At-most-once skips a message a worker on this host already took.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pulsar
import structlog

from fscommon.function_options import FunctionOptions, Guarantee, Ordering
from fscommon.latency import LatencyHistogram
from fscommon.protocol import EventKind, heartbeat_fields
from fsworker.attempts import AttemptLedger
from fsworker.batch_take import BatchTaker
from fsworker.codec import SchemaError, input_decoder
from fsworker.commit import BatchResult, Committer, Counters
from fsworker.done_marks import DoneMarks
from fsworker.error_kinds import ErrorKind, Failure
from fsworker.fsd_link import FsdLink
from fsworker.guest import Guest
from fsworker.guest_calls import GuestCalls
from fsworker.host_context import HostContext
from fsworker.publish import FUNCTION_PROPERTY, Publisher
from fsworker.pulsar_fast import receiver
from fsworker.pulsar_io import PulsarIO
from fsworker.records import dead_letter
from fsworker.redeliveries import HandedBack
from fsworker.retry_in_place import InPlaceRetry, has_failures

__all__ = ["FUNCTION_PROPERTY", "Counters", "ProcessingLoop"]

log = structlog.get_logger("fsworker.loop")

RECEIVE_TIMEOUT_MS = 100
# The wait for a message while batches await their confirmation (then acks are due).
CONFIRM_POLL_MS = 1


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
        self._calls = GuestCalls(guest)
        self._io = io
        # The client binding where it is a real consumer (fsworker/pulsar_fast.py).
        self._consumer = receiver(io.consumer)
        # Message by message at low rates, whole batches under load (fsworker/batch_take.py).
        self._taker = BatchTaker(self._consumer, max_batch, getattr(io, "batch_receive_max", 0))
        self._link = link
        self._options = options
        self._function = function
        self._replica = replica
        self._heartbeat_interval = heartbeat_interval
        self._decode = input_decoder(options)
        self._at_most_once = options.guarantee == Guarantee.AT_MOST_ONCE
        self._stopping = False
        self._ledger = ledger
        # Failover: the broker does not count redeliveries, so the loop does.
        self._handed_back = HandedBack() if options.ordering == Ordering.STRICT else None
        # Exactly-once state (fsworker/done_marks.py) where the function has a store.
        self._marks = (
            DoneMarks(host.transaction)
            if host is not None and host.transaction is not None
            else None
        )
        self._next_beat = 0.0
        self._reported: dict[str, int] = {}  # the counters of the last beat
        self._covered_until = 0.0  # the last beat announced guest calls up to this time
        if options.timeout_ms is not None:
            guest.before_call = self._cover
        self.counters = Counters()
        # effectively-once retries a failed message in its place (fsworker/retry_in_place.py).
        self._in_place = (
            InPlaceRetry(options, self._decode, self._calls.call_one, self._cover, self.counters)
            if options.guarantee == Guarantee.EFFECTIVELY_ONCE
            else None
        )
        # Per-message processing latency (fscommon/latency.py), one update per batch.
        self.latency = LatencyHistogram()
        self._publisher = Publisher(io, options, function)
        self._committer = Committer(
            io,
            self._consumer,
            self.counters,
            self.latency,
            output=self._publisher.output,
            # Only a Failover subscription takes cumulative acknowledgements.
            cumulative=options.ordering == Ordering.STRICT,
            at_most_once=self._at_most_once,
            host=host,
            marks=self._marks,
            after_publish=after_publish,
            rewind=options.guarantee == Guarantee.EFFECTIVELY_ONCE,
        )

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
        self._reported = self.counters.as_dict()

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
        """Process batches until stopped; the last batch is acknowledged before it returns."""
        while not self._stopping:
            now = time.monotonic()
            if now >= self._next_beat:
                self._beat(now)
            batch = self._take_batch()
            if batch:
                self._handle(batch)
            elif not self._committer.pending and self.counters.as_dict() != self._reported:
                # Gone idle (nothing arrived for RECEIVE_TIMEOUT_MS, nothing awaits its
                # confirmation) with counts fsd has not seen: send them now, so `fsctl status`
                # right after a burst shows it processed, not up to an interval later. At most
                # one such beat per idle wait, and none under load.
                self._beat(time.monotonic())
        self._committer.settle()
        if self._ledger is not None:
            self._ledger.close()
        self._link.send(EventKind.HEARTBEAT, **self.heartbeat())

    def _take_batch(self) -> list[pulsar.Message]:
        """Take whatever is already queued, up to max_batch; block briefly if nothing is.

        While batches wait for their confirmation, the loop acknowledges those
        confirmed so far and polls for new messages in short waits instead of
        blocking on the confirmation: at a low rate the next message usually
        arrives while the previous one is being confirmed (a journal write), and
        it should not wait for that. Under load a batch is taken whole
        (fsworker/batch_take.py).
        """
        committer = self._committer
        if committer.pending:
            committer.settle(timeout=0)
        batch = self._taker.take(CONFIRM_POLL_MS if committer.pending else RECEIVE_TIMEOUT_MS)
        self.counters.received += len(batch)
        return batch

    def _handle(self, batch: list[pulsar.Message]) -> None:
        ledger = self._ledger
        if ledger is None:
            self._run(batch, self._attempts(batch))
            return
        mids = [m.message_id().serialize() for m in batch]
        known = ledger.known()
        if self._at_most_once:
            self._take_at_most_once(ledger, batch, mids, known)
            return
        if not known:  # the common case: no message a dead worker had in hand
            attempts = self._attempts(batch)
            ledger.begin(list(zip(mids, attempts, strict=True)))
            self._run(batch, attempts, mids=mids)
            return
        # Topic order, suspects in their places: effectively-once keeps an output only if
        # its sequence id (the input's position) is above every one published before it,
        # and the suspects usually come first (redelivered from where the dead worker was).
        whole = not any(mid in known for mid in mids)  # no suspect: cumulative acks allowed
        rewinds = self._committer.rewinds
        run: list[tuple[pulsar.Message, bytes, int]] = []
        for msg, mid in zip(batch, mids, strict=True):
            seen = known.get(mid)
            if seen is None:
                run.append((msg, mid, self._redeliveries(msg) + 1))
                continue
            self._run_innocent(ledger, run, whole)
            run = []
            if self._committer.rewinds != rewinds:
                return  # a run did not make it: the subscription brings the rest again, in order
            self._run_suspect(ledger, msg, mid, max(seen, self._redeliveries(msg)) + 1)
            if self._committer.rewinds != rewinds:
                return
        self._run_innocent(ledger, run, whole)

    def _run_innocent(
        self, ledger: AttemptLedger, run: list[tuple[pulsar.Message, bytes, int]], whole: bool
    ) -> None:
        """Messages no dead worker had in hand, as one batch."""
        if run:
            ledger.begin([(mid, n) for _, mid, n in run])
            self._run(
                [m for m, _, _ in run],
                [n for _, _, n in run],
                whole=whole,
                mids=[mid for _, mid, _ in run],
            )

    def _run_suspect(
        self, ledger: AttemptLedger, msg: pulsar.Message, mid: bytes, attempt: int
    ) -> None:
        """A suspect goes alone: if it kills the worker again, only it is blamed."""
        if attempt > self._options.max_retries + 1:
            # Every attempt it was given ended with the worker dying.
            error = (
                f"the worker process died while this message was in flight (a native "
                f"crash, an abort, or a kill after a hang); {attempt - 1} attempts in all"
            )
            self._run([msg], [attempt - 1], {0: (ErrorKind.CRASH, error)}, whole=False, sync=True)
            ledger.settle(mid, None)
            return
        ledger.begin([(mid, attempt)])
        with ledger.suspect_call():
            retried = self._run([msg], [attempt], whole=False, sync=True, mids=[mid])
        ledger.settle(mid, attempt if retried else None)

    def _attempts(self, batch: list[pulsar.Message]) -> list[int]:
        """The attempt number of each message of the batch (1 for a first delivery)."""
        if self._handed_back is None:
            return [m.redelivery_count() + 1 for m in batch]
        return [self._handed_back.redeliveries(m) + 1 for m in batch]

    def _redeliveries(self, msg: pulsar.Message) -> int:
        """How many times ``msg`` was handed back before (fsworker/redeliveries.py)."""
        counts = self._handed_back
        return counts.redeliveries(msg) if counts is not None else msg.redelivery_count()

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
            self._committer.acknowledge_now(
                [m for m, mid in zip(batch, mids, strict=True) if mid in known]
            )
            log.warning(
                "skipped messages a worker took before it died (at-most-once)",
                skipped=len(batch) - len(fresh),
            )
        if fresh:
            ledger.begin([(mid, 1) for _, mid in fresh])
            self._run([m for m, _ in fresh], [1] * len(fresh), whole=False)

    def _run(
        self,
        batch: list[pulsar.Message],
        attempts: list[int],
        preset: dict[int, Failure] | None = None,
        whole: bool = True,
        sync: bool = False,
        mids: list[bytes] | None = None,
    ) -> int:
        """Call, publish and hand one batch to the committer; how many were handed back.

        ``attempts[i]`` is the attempt number of ``batch[i]``; ``preset`` failures
        are not called. ``whole``: the batch is all that was taken (cumulative
        acknowledgement allowed, fsworker/commit.py); ``sync``: confirm before
        returning (the count then includes a failed confirmation); ``mids``: the
        batch's serialized ids when the caller has them already.
        """
        started = time.perf_counter()
        if self._at_most_once:
            self._committer.acknowledge_now(batch)
        elif self._marks is not None and not preset and self._marks.in_use():
            batch, attempts = self._skip_done(batch, attempts, mids)
            if not batch:
                return 0
        payloads: list[bytes | None] = []
        failures: dict[int, Failure] = dict(preset) if preset else {}
        decode = self._decode
        if decode is None and not failures:
            payloads = [msg.data() for msg in batch]
        else:
            for i, msg in enumerate(batch):
                if i in failures:
                    payloads.append(None)
                    continue
                data = msg.data()
                if decode is not None:
                    try:
                        data = decode(data)
                    except SchemaError as exc:
                        failures[i] = (ErrorKind.SCHEMA, str(exc))
                        payloads.append(None)
                        continue
                payloads.append(data)
        outcomes = self._calls.call(batch, payloads, failures)
        overrides = self._guest.last_output_meta if len(failures) < len(batch) else None
        if self._in_place is not None and has_failures(failures, outcomes):
            outcomes = list(outcomes)
            overrides = self._in_place.settle(batch, failures, outcomes, overrides, attempts)

        published = self._publisher.publish_batch(batch, outcomes, overrides, failures)
        if not failures:  # the common case: every input done
            if self._handed_back:
                self._handed_back.note([], batch)
            result = BatchResult(batch, list(batch), [], published, 0, started, whole)
            return self._committer.commit(result, allow_pipeline=not sync)
        done: list[pulsar.Message] = []
        retry: list[pulsar.Message] = []
        dead = 0
        for i, msg in enumerate(batch):
            failure = failures.get(i)
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
        if self._handed_back is not None:
            self._handed_back.note(retry, done)
        result = BatchResult(batch, done, retry, published, dead, started, whole)
        return self._committer.commit(result, allow_pipeline=not sync)

    def _skip_done(
        self, batch: list[pulsar.Message], attempts: list[int], mids: list[bytes] | None
    ) -> tuple[list[pulsar.Message], list[int]]:
        """Acknowledge, without processing, what a batch already committed (a redelivery)."""
        assert self._marks is not None
        if mids is None:  # serializing an id costs ~1 us: once per message at most
            mids = [m.message_id().serialize() for m in batch]
        done = self._marks.already_done(mids)
        if not done:
            return batch, attempts
        kept: list[pulsar.Message] = []
        kept_attempts: list[int] = []
        for msg, mid, attempt in zip(batch, mids, attempts, strict=True):
            if mid in done:
                self._committer.acknowledge_now([msg])
            else:
                kept.append(msg)
                kept_attempts.append(attempt)
        log.warning(
            "acknowledged messages whose batch had committed its state before a crash",
            skipped=len(done),
        )
        self.counters.processed += len(done)
        return kept, kept_attempts
