"""The processing loop: take what is queued, call the guest, publish, confirm, acknowledge.

At-least-once without a Python callback per message (see DESIGN): results are
sent with ``send_async(..., None)``, ``producer.flush()`` returns once the
broker has confirmed every one of them, and only then are the inputs
acknowledged.  A send that fails makes ``flush`` raise; then nothing of the
batch is acknowledged and every input is negatively acknowledged, so the broker
redelivers it.  Heartbeats are sent from this loop, so a hung loop stops them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pulsar
import structlog

from fscommon.protocol import EventKind
from fsworker.fsd_link import FsdLink
from fsworker.guest import Guest, GuestError

log = structlog.get_logger("fsworker.loop")

RECEIVE_TIMEOUT_MS = 100


@dataclass
class Counters:
    """Per-replica message counters, reported in heartbeats."""

    received: int = 0
    processed: int = 0
    failed: int = 0
    published: int = 0

    def as_dict(self) -> dict[str, int]:
        """For the heartbeat event."""
        return {
            "received": self.received,
            "processed": self.processed,
            "failed": self.failed,
            "published": self.published,
        }


class ProcessingLoop:
    """Runs until ``stop()`` is called, then finishes the batch in hand and returns."""

    def __init__(
        self,
        guest: Guest,
        consumer: pulsar.Consumer,
        producer: pulsar.Producer | None,
        link: FsdLink,
        max_batch: int,
        heartbeat_interval: float,
    ) -> None:
        self._guest = guest
        self._consumer = consumer
        self._producer = producer
        self._link = link
        self._max_batch = max_batch
        self._heartbeat_interval = heartbeat_interval
        self._stopping = False
        self.counters = Counters()

    def stop(self) -> None:
        """Ask the loop to end after the current batch (safe from a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        """Process batches until stopped."""
        next_beat = 0.0
        while not self._stopping:
            now = time.monotonic()
            if now >= next_beat:
                self._link.send(EventKind.HEARTBEAT, **self.counters.as_dict())
                next_beat = now + self._heartbeat_interval
            batch = self._take_batch()
            if batch:
                self._handle(batch)
        self._link.send(EventKind.HEARTBEAT, **self.counters.as_dict())

    def _take_batch(self) -> list[pulsar.Message]:
        """Block briefly for one message, then take whatever else is already queued."""
        try:
            first = self._consumer.receive(RECEIVE_TIMEOUT_MS)
        except pulsar.Timeout:
            return []
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._consumer.receive(0))
            except pulsar.Timeout:
                break
        self.counters.received += len(batch)
        return batch

    def _handle(self, batch: list[pulsar.Message]) -> None:
        done: list[pulsar.Message] = []
        failed: list[pulsar.Message] = []
        producer = self._producer
        published = 0
        for msg in batch:
            try:
                out = self._guest.call(msg.data())
            except GuestError as exc:
                failed.append(msg)
                log.warning(
                    "message failed",
                    error_kind=exc.kind,
                    error=str(exc),
                    message_id=str(msg.message_id()),
                    topic=msg.topic_name(),
                )
                continue
            if out is not None and producer is not None:
                producer.send_async(
                    out,
                    None,
                    properties=msg.properties() or None,
                    partition_key=msg.partition_key() or None,
                )
                published += 1
            done.append(msg)
        if producer is not None and published:
            try:
                producer.flush()
            except pulsar.PulsarException as exc:
                log.error("publishing failed; the batch will be redelivered", error=str(exc))
                for msg in batch:
                    self._consumer.negative_acknowledge(msg)
                self.counters.failed += len(batch)
                return
        for msg in done:
            self._consumer.acknowledge(msg)
        for msg in failed:
            self._consumer.negative_acknowledge(msg)
        self.counters.processed += len(done)
        self.counters.failed += len(failed)
        self.counters.published += published
