"""What the processing loop derives from an input message: sequence ids, guest metadata,
dead letters."""

from __future__ import annotations

from typing import Any

import pulsar
import structlog

from fsworker.error_kinds import ErrorKind
from fsworker.host_context import MessageMeta
from fsworker.pulsar_io import PulsarIO

log = structlog.get_logger("fsworker.loop")


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


def message_meta(msg: pulsar.Message) -> MessageMeta:
    """What the guest may read about its current input."""
    return MessageMeta(
        key=msg.partition_key() or None,
        properties=dict(msg.properties()),
        event_time=msg.event_timestamp() or 0,
    )


def dead_letter(
    io: PulsarIO,
    msg: pulsar.Message,
    kind: ErrorKind,
    error: str,
    attempts: int,
    function: str,
    replica: int,
) -> None:
    """Send ``msg`` to its dead-letter topic: why, and after how many attempts (not flushed)."""
    props = dict(msg.properties())
    props.update(
        {
            "fs-error-kind": kind,
            "fs-error": error[:2000],
            "fs-function": function,
            "fs-replica": str(replica),
            "fs-original-message-id": str(msg.message_id()),
            "fs-original-topic": msg.topic_name(),
            "fs-attempts": str(attempts),
        }
    )
    kwargs: dict[str, Any] = {"properties": props}
    key = msg.partition_key()
    if key:
        kwargs["partition_key"] = key
    io.dead_letter(msg.topic_name()).send_async(msg.data(), None, **kwargs)
    log.warning(
        "message dead-lettered",
        error_kind=kind,
        error=error,
        message_id=str(msg.message_id()),
        topic=msg.topic_name(),
        attempts=attempts,
    )
