"""Publishing one input's outputs: pass-through metadata, the guest's overrides, sequence ids.

Split out of the processing loop so the per-message work stays small and in one
place: the input's key, properties and event time are read only when they pass
through (``--pass-through``), the properties dict is the one the client already
built (no copy) unless something is added to it, and ``fs-function`` goes on
each output as a single builder call rather than through a dict
(fsworker/pulsar_fast.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fscommon.function_options import FunctionOptions, Guarantee, PassThrough
from fsworker.codec import SchemaError, output_encoder
from fsworker.error_kinds import ErrorKind, Failure
from fsworker.guest import GuestError
from fsworker.host_context import OutputMeta
from fsworker.pulsar_fast import Sender, plain_publisher
from fsworker.records import sequence_id

FUNCTION_PROPERTY = "fs-function"


class Publisher:
    """Sends the outputs of each input on the function's output producer (not flushed).

    ``io`` is the replica's PulsarIO (or a stand-in with ``output``,
    ``spec.output`` and ``dedup_output(topic)``).
    """

    def __init__(self, io: Any, options: FunctionOptions, function: str) -> None:
        self._io = io
        self._function = function
        self._tag = (FUNCTION_PROPERTY, function)
        self._encode: Callable[[bytes], Any] | None = output_encoder(options)
        self._dedup = options.guarantee == Guarantee.EFFECTIVELY_ONCE and bool(io.spec.output)
        passing = set(options.pass_through)
        self._pass_key = PassThrough.KEY in passing
        self._pass_props = PassThrough.PROPERTIES in passing
        self._pass_time = PassThrough.EVENT_TIME in passing
        # The shared output producer (None: a sink, or effectively-once's per-topic producers).
        self.output: Sender | None = Sender(io.output) if io.output is not None else None
        self._dedup_senders: dict[str, Sender] = {}

    def publish_batch(
        self,
        batch: Sequence[Any],
        outcomes: Sequence[Any],
        overrides: Sequence[OutputMeta | None] | None,
        failures: dict[int, Failure],
    ) -> int:
        """Publish every input's outputs; how many records were sent.

        ``outcomes[i]`` is the guest's outputs for ``batch[i]`` or a GuestError;
        inputs already in ``failures`` are skipped, and those whose guest call or
        output failed are added to it as (fs-error-kind, error).
        """
        fast = self._plain_fast_path()
        published = 0
        publish = self.publish
        for i, msg in enumerate(batch):
            if failures and i in failures:
                continue
            outcome = outcomes[i]
            if isinstance(outcome, GuestError):
                failures[i] = (outcome.kind, str(outcome))
                continue
            override = overrides[i] if overrides is not None else None
            if override is not None and not (
                override.key is not None or override.properties or override.event_time
            ):
                override = None  # a guest that can set metadata but did not: pass through
            if fast is not None and override is None:
                published += fast(msg, outcome)
                continue
            try:
                published += publish(msg, outcome, override)
            except SchemaError as exc:
                failures[i] = (ErrorKind.SCHEMA, str(exc))
        return published

    def _plain_fast_path(self) -> Callable[[Any, Sequence[bytes]], int] | None:
        """The common case in one small function: raw bytes out, one shared producer, the
        client binding; None when any of that does not hold."""
        sender = self.output
        if self._dedup or self._encode is not None or sender is None or not sender.fast:
            return None
        return plain_publisher(
            sender,
            self._tag,
            self._pass_props,
            self._pass_key,
            self._pass_time,
            # Input properties that already hold fs-function: the general path replaces it.
            lambda msg, outputs: self.publish(msg, outputs, None),
        )

    def publish(self, msg: Any, outputs: Sequence[bytes], override: OutputMeta | None) -> int:
        """Send the outputs of one input (encoded first, so a bad one sends nothing).

        What the guest set through the host API (``override``) replaces the
        passed-through key and event time, and adds to the properties. Raises
        SchemaError when an output does not match the output schema.
        """
        if not outputs:
            return 0
        encode = self._encode
        records = [encode(o) for o in outputs] if encode is not None else outputs
        if self._dedup:
            sender = self._dedup_sender(msg.topic_name())
        else:
            sender = self.output
            if sender is None:
                return 0  # a sink function: nothing to publish
        props: dict[str, str] | None = msg.properties() if self._pass_props else None
        key = msg.partition_key() if self._pass_key else None
        event_time = msg.event_timestamp() if self._pass_time else None
        tag: tuple[str, str] | None = self._tag
        if override is not None or (props and FUNCTION_PROPERTY in props):
            # Rare: build the dict, so fs-function and the guest's properties win once.
            props = dict(props) if props else {}
            props[FUNCTION_PROPERTY] = self._function
            tag = None
            if override is not None:
                props.update(override.properties)
                if override.key is not None:
                    key = override.key
                if override.event_time:
                    event_time = override.event_time
        if not self._dedup:
            send = sender.send
            for record in records:
                send(record, props, tag, key, event_time, None)
        else:
            for k, record in enumerate(records):
                sender.send(record, props, tag, key, event_time, sequence_id(msg, k))
        return len(records)

    def _dedup_sender(self, input_topic: str) -> Sender:
        sender = self._dedup_senders.get(input_topic)
        if sender is None:
            sender = Sender(self._io.dedup_output(input_topic))
            self._dedup_senders[input_topic] = sender
        return sender
