"""The worker's shortcuts through pulsar-client's wrapper classes, in one place.

pulsar-client's Python classes (``pulsar.Consumer``, ``pulsar.Producer``) wrap
the C++ bindings (``_pulsar``). On the hot path the wrappers cost more than the
work: ``Producer.send_async`` type-checks ten arguments in Python before it
builds a message (about half of a send, docs/performance.md), and
``Consumer.receive`` wraps every message in a Python object. The bindings
themselves take the same arguments, so this module reaches through to them:

* ``receiver(consumer)``: the object to receive from and acknowledge on; the
  binding's messages have the methods the loop uses (``data``, ``properties``,
  ``partition_key``, ``event_timestamp``, ``message_id``, ``redelivery_count``,
  ``topic_name``).
* ``Sender``: builds messages with ``_pulsar.MessageBuilder`` and sends them with
  the binding's ``send_async``; ``flush_async`` confirms without blocking.

Both fall back to the public API for anything that is not a real pulsar-client
object (the in-process stand-ins of ``fsctl run``), so the loop keeps working
with duck-typed consumers and producers. The private names used are
``pulsar.Consumer._consumer``, ``pulsar.Producer._producer`` and
``pulsar.Producer._schema``: tests/unit/test_pulsar_fast.py fails loudly when
an upgrade of pulsar-client changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import _pulsar
import pulsar
from pulsar.schema import BytesSchema

# What a confirmation callback gets: pulsar.Result.Ok, or why the sends failed.
FlushCallback = Callable[[Any], None]


def receiver(consumer: Any) -> Any:
    """What to call ``receive``/``acknowledge``/``negative_acknowledge`` on.

    For a pulsar-client consumer, its binding (no wrapper object per message);
    anything else is returned as it is.
    """
    if isinstance(consumer, pulsar.Consumer):
        inner = getattr(consumer, "_consumer", None)
        if inner is not None:
            return inner
    return consumer


class Sender:
    """Sends records on one producer, through the binding when it is a real one.

    ``fast`` tells whether the binding is used (a bytes-schema pulsar-client
    producer); with any other producer ``send`` calls its public ``send_async``.
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        inner = (
            getattr(producer, "_producer", None) if isinstance(producer, pulsar.Producer) else None
        )
        schema = getattr(producer, "_schema", None)
        self._inner = inner
        self.fast = inner is not None and schema is not None
        # A schema producer (Avro, JSON) encodes the record first, as its send_async would.
        self._encode = None if isinstance(schema, BytesSchema) or schema is None else schema.encode
        self._send = inner.send_async if inner is not None else None

    def send(
        self,
        data: Any,
        properties: dict[str, str] | None,
        extra: tuple[str, str] | None,
        key: str | None,
        event_time: int | None,
        sequence_id: int | None,
    ) -> None:
        """Send one record without a callback; ``extra`` is one more property (no dict built)."""
        if not self.fast:
            props = dict(properties) if properties else {}
            if extra is not None:
                props[extra[0]] = extra[1]
            kwargs: dict[str, Any] = {"properties": props}
            if key:
                kwargs["partition_key"] = key
            if event_time:
                kwargs["event_timestamp"] = event_time
            if sequence_id is not None:
                kwargs["sequence_id"] = sequence_id
            self.producer.send_async(data, None, **kwargs)
            return
        if self._encode is not None:
            data = self._encode(data)
        mb = _pulsar.MessageBuilder().content(data)
        if properties:
            mb.properties(properties)
        if extra is not None:
            mb.property(extra[0], extra[1])
        if key:
            mb.partition_key(key)
        if event_time:
            mb.event_timestamp(event_time)
        if sequence_id is not None:
            mb.sequence_id(sequence_id)
        self._send(mb.build(), None)  # type: ignore[misc]

    def flush_async(self, callback: FlushCallback) -> None:
        """Send what is batched; ``callback(result)`` once the broker confirmed all sent so far.

        Without the binding (a stand-in producer) this flushes synchronously and
        calls back at once; a failed flush calls back with the exception.
        """
        if self._inner is not None:
            self._inner.flush_async(callback)
            return
        try:
            self.producer.flush()
        except Exception as exc:  # the stand-in's own failure, reported like the broker's
            callback(exc)
            return
        callback(pulsar.Result.Ok)


def plain_publisher(
    sender: Sender,
    tag: tuple[str, str],
    pass_props: bool,
    pass_key: bool,
    pass_time: bool,
    general: Callable[[Any, Sequence[bytes]], int],
) -> Callable[[Any, Sequence[bytes]], int]:
    """``publish(msg, outputs) -> sent`` for the common case, with no call between the input and
    the binding: bytes records on a ``fast`` sender, the input's metadata passed through as
    asked, ``tag`` as one more property. An input whose properties already hold ``tag``'s
    name goes to ``general`` (so the property is replaced, not repeated)."""
    assert sender.fast and sender._encode is None and sender._send is not None
    builder = _pulsar.MessageBuilder
    send = sender._send
    tag_key, tag_value = tag

    def publish(msg: Any, outputs: Sequence[bytes]) -> int:
        if not outputs:
            return 0
        props = msg.properties() if pass_props else None
        if props and tag_key in props:
            return general(msg, outputs)
        key = msg.partition_key() if pass_key else None
        event_time = msg.event_timestamp() if pass_time else None
        for record in outputs:
            mb = builder().content(record).property(tag_key, tag_value)
            if props:
                mb.properties(props)
            if key:
                mb.partition_key(key)
            if event_time:
                mb.event_timestamp(event_time)
            send(mb.build(), None)
        return len(outputs)

    return publish
