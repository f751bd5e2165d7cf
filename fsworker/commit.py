"""A batch's commit order, in one place: outputs confirmed, then state, then acknowledgements.

At-least-once needs every output of a batch confirmed by the broker before any
of its inputs is acknowledged; exactly-once state (fsworker/done_marks.py) needs
the state transaction committed between the two. ``Committer`` is the only code
that acknowledges, negatively acknowledges or confirms, and it does so in that
order for every batch.

Two ways to confirm:

* **synchronous**: ``io.flush()`` (every producer), then the state commit, then
  the acks. Used when the batch read or wrote state, has dead letters or
  effectively-once producers, and under at-most-once.
* **pipelined**: the common case (one output producer, no state read or written
  by the batch, nothing else to commit).
  ``flush_async`` sends the batch's outputs as one entry and calls back once the
  broker confirmed them; meanwhile the loop takes and processes the next batch,
  and earlier batches are acknowledged when their confirmations are in. Batches
  wait like this up to ``MAX_IN_FLIGHT_MESSAGES`` inputs (two full batches under
  load; at a low rate many one-message batches, so a message arriving while the
  one before it is confirmed need not wait for that), and are settled in the order
  they were submitted, so the acks follow the same order as with a blocking flush. A
  failed confirmation negatively acknowledges the whole batch, as a failed
  ``flush()`` does. One Python callback per batch, never per message.

Acknowledgements are cumulative where the subscription allows it (Failover,
``--ordering strict``): one cumulative ack per topic per batch instead of one per
message, but only for a batch taken whole and only while no earlier message of
that topic is waiting for redelivery (a cumulative ack would acknowledge it too).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulsar
import structlog

from fscommon.latency import LatencyHistogram
from fsworker.done_marks import DoneMarks
from fsworker.host_context import HostContext
from fsworker.pulsar_fast import Sender
from fsworker.state_store import StateError

log = structlog.get_logger("fsworker.loop")

# How much may wait for its confirmation while the loop keeps going: inputs, except
# that two batches may always be out (one larger than this included), and batches.
MAX_IN_FLIGHT_MESSAGES = 2000
MAX_IN_FLIGHT_BATCHES = 64

# Errors that mean "this batch's outputs or state did not make it": redeliver the batch.
COMMIT_ERRORS = (pulsar.PulsarException, StateError, sqlite3.Error)


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


@dataclass
class BatchResult:
    """What processing one batch came to; the committer makes it final."""

    batch: list[Any]  # every message (all negatively acknowledged if the commit fails)
    done: list[Any]  # outputs sent, or dead-lettered: acknowledge, in receive order
    retry: list[Any]  # failed with attempts left: negatively acknowledge
    published: int  # outputs sent
    dead: int  # dead letters sent (also in ``done``)
    started: float  # time.perf_counter() when the batch was taken
    # The batch is all that was taken, in order (no suspects split off): cumulative acks allowed.
    whole: bool = True


@dataclass
class _Pending:
    """A pipelined batch whose outputs wait for the broker's confirmation."""

    result: BatchResult
    confirmed: threading.Event = field(default_factory=threading.Event)
    outcome: list[Any] = field(default_factory=list)  # [pulsar.Result or exception]

    def on_flushed(self, result: Any) -> None:
        """flush_async's callback (a client thread): note the result, wake the loop."""
        self.outcome.append(result)
        self.confirmed.set()


class Committer:
    """Confirms, commits and acknowledges batches in order (see the module docstring)."""

    def __init__(
        self,
        io: Any,
        consumer: Any,
        counters: Counters,
        latency: LatencyHistogram,
        *,
        output: Sender | None,
        cumulative: bool,
        at_most_once: bool,
        host: HostContext | None = None,
        marks: DoneMarks | None = None,
        after_publish: Callable[[], None] | None = None,
        rewind: bool = False,
    ) -> None:
        self._io = io
        self._consumer = consumer
        self._counters = counters
        self._latency = latency
        self._output = output
        self._cumulative = cumulative
        self._at_most_once = at_most_once
        self._host = host
        self._marks = marks
        self._after_publish = after_publish  # a test hook: runs between confirmation and acks
        # effectively-once: a batch that did not make it is redelivered by rewinding the
        # subscription, so nothing after it is taken (and published) before it comes back.
        self._rewind = rewind
        self.rewinds = 0  # how many times it rewound: what the loop still holds comes again
        self._pending: deque[_Pending] = deque()  # oldest first
        self._in_flight = 0  # inputs of the pending batches
        # Failover: ids (serialized) per topic handed back for redelivery and not yet settled.
        self._awaiting: dict[str, set[bytes]] = {}

    @property
    def pending(self) -> bool:
        """Pipelined batches wait for their confirmation."""
        return bool(self._pending)

    def can_pipeline(self, result: BatchResult) -> bool:
        """Whether this batch may be confirmed without blocking (see the module docstring)."""
        # A stand-in producer (not pulsar-client's) is confirmed through io.flush() as before.
        return (
            self._output is not None
            and self._output.fast
            and not self._at_most_once
            and result.dead == 0
            and not self._state_touched()
        )

    def _state_touched(self) -> bool:
        """This batch read or wrote state: its transaction must end before the acks.

        Every replica fsd starts has a store, so "has a store" would keep every
        stateless function on the synchronous path.
        """
        tx = self._host.transaction if self._host is not None else None
        return tx is not None and tx.begun

    def commit(self, result: BatchResult, allow_pipeline: bool = True) -> int:
        """Make one batch final; how many of its inputs were handed back for redelivery.

        A pipelined batch returns its guest failures only; a failed confirmation
        shows up later in the counters (it hands the whole batch back).
        """
        if allow_pipeline and self.can_pipeline(result):
            pending = _Pending(result)
            assert self._output is not None
            self._output.flush_async(pending.on_flushed)
            # Earlier batches, in submission order: those already confirmed now, and the
            # oldest waited for once too much is out (the confirmation of a 1,000-message
            # entry sometimes takes longer than processing the next batch).
            self.settle(timeout=0)
            while self._too_much_in_flight(len(result.batch)):
                self._settle_oldest(None)
            self._pending.append(pending)
            self._in_flight += len(result.batch)
            return len(result.retry)
        self.settle()
        return self._commit_now(result)

    def _too_much_in_flight(self, adding: int) -> bool:
        waiting = len(self._pending)
        return waiting >= MAX_IN_FLIGHT_BATCHES or (
            waiting >= 2 and self._in_flight + adding > MAX_IN_FLIGHT_MESSAGES
        )

    def settle(self, timeout: float | None = None) -> bool:
        """Acknowledge the pipelined batches in order, each once its confirmation is in.

        With a ``timeout`` (seconds) for each, stops at the first batch not confirmed
        within it and returns False; True once nothing is pending.
        """
        while self._pending:
            if not self._settle_oldest(timeout):
                return False
        return True

    def _settle_oldest(self, timeout: float | None) -> bool:
        pending = self._pending[0]
        if not pending.confirmed.wait(timeout):
            return False
        self._pending.popleft()
        self._in_flight -= len(pending.result.batch)
        outcome = pending.outcome[0] if pending.outcome else None
        if outcome != pulsar.Result.Ok:
            self._hand_back(pending.result, f"the broker did not confirm the outputs: {outcome}")
            return True
        self._finish(pending.result)
        return True

    def acknowledge_now(self, messages: list[Any]) -> None:
        """Acknowledge without a commit (at-most-once on receive, skipped redeliveries)."""
        ack = self._consumer.acknowledge
        for msg in messages:
            ack(msg)

    def _commit_now(self, result: BatchResult) -> int:
        host = self._host
        try:
            if result.published or result.dead:
                self._io.flush()
            # State written while processing is durable before any input is acknowledged.
            if host is not None and host.transaction is not None:
                if self._marks is not None:
                    self._marks.mark([m.message_id().serialize() for m in result.done])
                host.transaction.commit()
        except COMMIT_ERRORS as exc:
            if host is not None and host.transaction is not None:
                host.transaction.rollback()
            return self._hand_back(result, f"publishing or committing state failed: {exc}")
        self._finish(result)
        return len(result.retry)

    def _hand_back(self, result: BatchResult, why: str) -> int:
        """The batch's outputs or state did not make it: redeliver every input."""
        log.error(why + "; redelivering")
        rewind = getattr(self._consumer, "redeliver_unacknowledged_messages", None)
        if self._rewind and rewind is not None:
            # Its outputs' sequence ids must stay ahead of everything after it (docs/guarantees.md):
            # the Failover subscription starts again from the oldest unacknowledged message.
            rewind()
            self.rewinds += 1
        elif not self._at_most_once:
            self._note_awaiting(result.batch)
            nack = self._consumer.negative_acknowledge
            for msg in result.batch:
                nack(msg)
        self._counters.failed += len(result.batch)
        return len(result.batch)

    def _finish(self, result: BatchResult) -> None:
        """Confirmed (and committed): acknowledge, hand the failures back, count."""
        if self._after_publish is not None:
            self._after_publish()
        if not self._at_most_once:
            if result.retry:
                self._note_awaiting(result.retry)
            self._acknowledge(result.done, result.whole)
            nack = self._consumer.negative_acknowledge
            for msg in result.retry:
                nack(msg)
        counters = self._counters
        counters.processed += len(result.done) - result.dead
        counters.retried += len(result.retry)
        counters.dead_lettered += result.dead
        counters.published += result.published
        self._latency.observe(time.perf_counter() - result.started, len(result.batch))

    def _note_awaiting(self, messages: list[Any]) -> None:
        if self._cumulative:
            for msg in messages:
                topic = msg.topic_name()
                self._awaiting.setdefault(topic, set()).add(msg.message_id().serialize())

    def _acknowledge(self, done: list[Any], whole: bool) -> None:
        """Acknowledge ``done``: cumulatively per topic where that acknowledges nothing else."""
        if not done:
            return
        consumer = self._consumer
        if not self._cumulative:
            ack = consumer.acknowledge
            for msg in done:
                ack(msg)
            return
        by_topic: dict[str, list[Any]] = {}
        for msg in done:
            by_topic.setdefault(msg.topic_name(), []).append(msg)
        for topic, messages in by_topic.items():
            awaiting = self._awaiting.get(topic)
            if whole and not awaiting:
                consumer.acknowledge_cumulative(messages[-1])
                continue
            for msg in messages:
                consumer.acknowledge(msg)
                if awaiting:
                    awaiting.discard(msg.message_id().serialize())
            if awaiting is not None and not awaiting:
                del self._awaiting[topic]
