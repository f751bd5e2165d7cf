"""A function's dead letters on the broker: read, save, replay and purge them.

Blocking Pulsar work, run off fsd's loop (fsd/dead_letters.py). Each dead-letter
topic is read through the durable Shared subscription ``DLQ_SUBSCRIPTION``
(fscommon/protocol.py), which the worker creates before it dead-letters anything
there (fsworker/pulsar_io.py), so every dead letter is retained until it is
acknowledged on it. Reading never acknowledges: a consumer that closes with
messages unacknowledged hands them back, and the next reader sees them again.
Replay acknowledges a dead letter only after the broker confirmed its re-publish
to the input topic, so a replay cut short leaves each message in one place or
both (then it is replayed again), never in neither.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pulsar

from fscommon.logs import silent_pulsar_logger
from fscommon.protocol import (
    DEAD_LETTER_PROPERTIES,
    DLQ_SUBSCRIPTION,
    REPLAYED_FROM,
    REPLAYED_FROM_TOPIC,
)

# How long a reader waits for the first dead letter, then for each next one, before it
# takes the topic as read (the newest message may already be acknowledged, so the last
# message id is not always reached). Measured: a local broker delivers in ~2 ms.
FIRST_WAIT_MS = 1500
NEXT_WAIT_MS = 500
# The most dead letters one replay or purge goes through per topic.
SCAN_MAX = 100_000
# How long a replay waits for the broker to confirm the re-published messages.
CONFIRM_TIMEOUT_S = 30.0


class DeadLetterError(Exception):
    """The broker could not be used; the message says for what."""


class UnknownDeadLetters(Exception):
    """Ids that are not among the function's dead letters (nothing was done)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = ids


def dead_letter_id(msg: pulsar.Message) -> str:
    """``<ledger>:<entry>``, with ``:<batch index>`` for a message of a batch."""
    mid = msg.message_id()
    text = f"{mid.ledger_id()}:{mid.entry_id()}"
    return f"{text}:{mid.batch_index()}" if mid.batch_index() >= 0 else text


def describe(msg: pulsar.Message, topic: str) -> dict[str, Any]:
    """A dead letter as ``fsctl dlq list`` shows it (fscommon/protocol.py, entry)."""
    props = msg.properties()
    attempts = props.get("fs-attempts", "")
    return {
        "id": dead_letter_id(msg),
        "topic": topic,
        "error_kind": props.get("fs-error-kind"),
        "error": props.get("fs-error"),
        "attempts": int(attempts) if attempts.isdigit() else None,
        "original_topic": props.get("fs-original-topic"),
        "original_message_id": props.get("fs-original-message-id"),
        "replica": props.get("fs-replica"),
        "publish_time": msg.publish_timestamp(),
        "key": msg.partition_key() or None,
        "size": len(msg.data()),
    }


def replay_properties(msg: pulsar.Message, topic: str) -> dict[str, str]:
    """The original properties, without the dead-letter ones, plus where it came from."""
    props = {k: v for k, v in msg.properties().items() if k not in DEAD_LETTER_PROPERTIES}
    props[REPLAYED_FROM] = dead_letter_id(msg)
    props[REPLAYED_FROM_TOPIC] = topic
    return props


@dataclass
class _Held:
    """A dead letter received and not acknowledged, with the consumer that holds it."""

    msg: pulsar.Message
    topic: str
    consumer: pulsar.Consumer

    @property
    def id(self) -> str:
        return dead_letter_id(self.msg)


class DeadLetterBox:
    """The dead letters of one function's topics; use as a context manager."""

    def __init__(self, pulsar_url: str, topics: Iterable[str]) -> None:
        self._url = pulsar_url
        self.topics = list(dict.fromkeys(topics))
        self._client: pulsar.Client | None = None
        self._consumers: list[pulsar.Consumer] = []

    def __enter__(self) -> DeadLetterBox:
        self._client = pulsar.Client(
            self._url,
            operation_timeout_seconds=10,
            connection_timeout_ms=5000,
            logger=silent_pulsar_logger(),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        # Closing hands back what was not acknowledged and sends the pending acks.
        for consumer in self._consumers:
            with contextlib.suppress(pulsar.PulsarException):
                consumer.close()
        assert self._client is not None
        self._client.close()

    def _subscribe(self, topic: str) -> pulsar.Consumer:
        assert self._client is not None
        try:
            consumer = self._client.subscribe(
                topic,
                DLQ_SUBSCRIPTION,
                consumer_type=pulsar.ConsumerType.Shared,
                initial_position=pulsar.InitialPosition.Earliest,
                receiver_queue_size=1000,
            )
        except pulsar.PulsarException as exc:
            raise DeadLetterError(
                f"cannot read dead-letter topic {topic} at {self._url}: {exc}"
            ) from None
        self._consumers.append(consumer)
        return consumer

    def scan(self, limit: int = SCAN_MAX) -> tuple[list[_Held], bool]:
        """Up to ``limit`` dead letters (oldest first per topic), and whether more wait."""
        held: list[_Held] = []
        more = False
        for topic in self.topics:
            room = limit - len(held)
            if room <= 0:
                more = True
                break
            found, topic_more = self._scan_topic(topic, room)
            held += found
            more = more or topic_more
        return held, more

    def _scan_topic(self, topic: str, limit: int) -> tuple[list[_Held], bool]:
        consumer = self._subscribe(topic)
        last = consumer.get_last_message_id()
        if last.entry_id() < 0:
            return [], False  # nothing was ever written there
        end = (last.ledger_id(), last.entry_id(), last.batch_index())
        found: list[_Held] = []
        wait = FIRST_WAIT_MS
        while True:
            try:
                msg = consumer.receive(wait)
            except pulsar.Timeout:
                return _oldest_first(found), False
            wait = NEXT_WAIT_MS
            if len(found) == limit:
                return _oldest_first(found), True  # one more exists (and stays unacked)
            found.append(_Held(msg, topic, consumer))
            if _position(msg) >= end:
                return _oldest_first(found), False

    def find(self, ids: list[str]) -> list[_Held]:
        """The dead letters with these ids; raises UnknownDeadLetters naming the missing."""
        held, _ = self.scan()
        by_id = {h.id: h for h in held}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise UnknownDeadLetters(missing)
        return [by_id[i] for i in dict.fromkeys(ids)]

    def replay(self, chosen: list[_Held]) -> list[dict[str, Any]]:
        """Re-publish each to its original topic; acknowledge the confirmed ones only."""
        assert self._client is not None
        producers: dict[str, pulsar.Producer] = {}
        results: dict[str, pulsar.Result] = {}
        sent = 0
        try:
            for item in chosen:
                target = item.msg.properties().get("fs-original-topic")
                if not target:
                    raise DeadLetterError(
                        f"dead letter {item.id} has no fs-original-topic property: it was not "
                        f"written by a Function Stream worker; nothing was replayed after it"
                    )
                producer = producers.get(target)
                if producer is None:
                    producer = self._client.create_producer(target, batching_enabled=False)
                    producers[target] = producer
                kwargs: dict[str, Any] = {"properties": replay_properties(item.msg, item.topic)}
                if item.msg.partition_key():
                    kwargs["partition_key"] = item.msg.partition_key()
                producer.send_async(item.msg.data(), _recorder(results, item.id), **kwargs)
                sent += 1
            for producer in producers.values():
                producer.flush()
        except pulsar.PulsarException as exc:
            raise DeadLetterError(f"re-publishing failed: {exc}; unconfirmed ones stay") from None
        finally:
            _await_results(results, sent)
            self._acknowledge_confirmed(chosen, results)
            for producer in producers.values():
                producer.close()
        failed = [i.id for i in chosen if results.get(i.id) != pulsar.Result.Ok]
        if failed:
            raise DeadLetterError(
                f"the broker did not confirm the re-publish of {', '.join(failed[:10])}: they "
                f"stay in the dead-letter topic; the others were replayed"
            )
        return [
            {**describe(i.msg, i.topic), "replayed_to": i.msg.properties()["fs-original-topic"]}
            for i in chosen
        ]

    def _acknowledge_confirmed(self, chosen: list[_Held], results: dict[str, Any]) -> None:
        for item in chosen:
            if results.get(item.id) == pulsar.Result.Ok:
                item.consumer.acknowledge(item.msg)

    def purge(self) -> tuple[int, bool]:
        """Acknowledge the dead letters found (up to SCAN_MAX a topic); how many, and
        whether more remain (purge again)."""
        held, more = self.scan()
        for item in held:
            item.consumer.acknowledge(item.msg)
        return len(held), more


def _recorder(results: dict[str, Any], key: str) -> Any:
    def done(result: pulsar.Result, _msg_id: Any) -> None:
        results[key] = result

    return done


def _await_results(results: dict[str, Any], count: int) -> None:
    """The send callbacks run on the client's thread; flush returns before the last ones."""
    deadline = time.monotonic() + CONFIRM_TIMEOUT_S
    while len(results) < count and time.monotonic() < deadline:
        time.sleep(0.005)


def _position(msg: pulsar.Message) -> tuple[int, int, int]:
    mid = msg.message_id()
    return (mid.ledger_id(), mid.entry_id(), mid.batch_index())


def _oldest_first(found: list[_Held]) -> list[_Held]:
    # A Shared subscription hands back redelivered messages first: put them in place.
    return sorted(found, key=lambda h: _position(h.msg))
