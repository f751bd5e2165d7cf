"""Produce to and read from Pulsar topics for people at a terminal."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import click
import pulsar

from fscommon.logs import silent_pulsar_logger


class TopicError(Exception):
    """Pulsar refused or could not be reached."""


# What to do, for every TopicError: the common causes are a broker that is down or still
# starting (an embedded one restarted by fsd serves topics again within about a minute).
_WHAT_TO_DO = (
    "check that the broker runs and is ready ('fsctl status' shows fsd's embedded broker) "
    "and that --pulsar-url is right, then try again"
)


def _client(url: str) -> pulsar.Client:
    return pulsar.Client(
        url,
        operation_timeout_seconds=10,
        connection_timeout_ms=5000,
        logger=silent_pulsar_logger(),
    )


def produce(url: str, topic: str, data: bytes, key: str | None, properties: dict[str, str]) -> str:
    """Send one message and wait for the broker's confirmation; return its message id."""
    client = _client(url)
    try:
        producer = client.create_producer(topic)
        message_id = producer.send(data, properties=properties or None, partition_key=key)
        producer.close()
        return str(message_id)
    except pulsar.PulsarException as exc:
        raise TopicError(f"cannot produce to '{topic}' at {url}: {exc}; {_WHAT_TO_DO}") from None
    finally:
        client.close()


def _render(msg: pulsar.Message) -> dict[str, Any]:
    raw = msg.data()
    try:
        data, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        data, encoding = base64.b64encode(raw).decode(), "base64"
    return {
        "topic": msg.topic_name(),
        "message_id": str(msg.message_id()),
        "key": msg.partition_key() or None,
        "properties": msg.properties(),
        "publish_time": msg.publish_timestamp(),
        "event_time": msg.event_timestamp() or None,
        "data": data,
        "encoding": encoding,
    }


def consume(
    url: str, topic: str, from_earliest: bool, deadline: float | None, count: int | None
) -> Iterator[dict[str, Any]]:
    """Yield messages as they arrive, from a non-durable reader (leaves no subscription)."""
    client = _client(url)
    try:
        start = pulsar.MessageId.earliest if from_earliest else pulsar.MessageId.latest
        reader = client.create_reader(topic, start)
        # Tells people (and tests) that messages produced from now on will be seen.
        click.echo(f"Consuming from '{topic}' (Ctrl-C to stop)", err=True)
        seen = 0
        while count is None or seen < count:
            if deadline is not None and time.monotonic() >= deadline:
                return
            try:
                msg = reader.read_next(200)
            except pulsar.Timeout:
                continue
            seen += 1
            yield _render(msg)
    except pulsar.PulsarException as exc:
        raise TopicError(f"cannot consume from '{topic}' at {url}: {exc}; {_WHAT_TO_DO}") from None
    finally:
        client.close()
