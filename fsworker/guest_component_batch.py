"""Lane 3's batch entry point, ``process-batch``: framing and chunks (docs/abi.md).

``process-batch`` takes and returns lane 1's ``process_batch`` framing
(fsworker/guest_abi.py) as one ``list<u8>`` each: one export call and one
entry into the guest's interpreter for many inputs, and one ``list<u8>`` to
lower instead of one per input. Chunks are as in lane 1: at most
``MAX_BATCH_RECORDS`` inputs and about ``MAX_BATCH_BYTES`` (with a memory limit
at most 1/8 of it, never under ``MIN_BATCH_BYTES``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fsworker.guest import ABI, GuestError, Outcome
from fsworker.guest_abi import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MIN_BATCH_BYTES
from fsworker.guest_abi import _parse_batch_output as _parse_lane1

EXPORT = "process-batch"


def batch_bytes_cap(memory_limit: int | None) -> int:
    """Roughly the most input bytes of one call, under ``memory_limit``."""
    if memory_limit is None:
        return MAX_BATCH_BYTES
    return max(MIN_BATCH_BYTES, min(MAX_BATCH_BYTES, memory_limit // 8))


def chunks(inputs: Sequence[bytes], cap: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each call's inputs: at most MAX_BATCH_RECORDS, about ``cap`` bytes.

    A single input larger than ``cap`` goes alone.
    """
    start, size = 0, 0
    for i, data in enumerate(inputs):
        size += 4 + len(data)
        if i > start and (i - start >= MAX_BATCH_RECORDS or size > cap):
            yield start, i
            start, size = i, 4 + len(data)
    if start < len(inputs):
        yield start, len(inputs)


def encode(inputs: Sequence[bytes]) -> bytes:
    """The ``process-batch`` argument: u32 count, then u32 length + bytes per input."""
    parts = [len(inputs).to_bytes(4, "little")]
    for data in inputs:
        parts.append(len(data).to_bytes(4, "little"))
        parts.append(data)
    return b"".join(parts)


def decode(out: bytes, count: int) -> list[Outcome]:
    """The outcomes in a ``process-batch`` result for ``count`` inputs, strictly checked.

    A framing error fails every input with kind ``abi``; an input with n < 0
    fails with kind ``error`` and its text, as lane 1's (docs/abi.md).
    """
    outcomes = _parse_lane1(out, count)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, GuestError):
            # Lane 1's text names its export; say which one this is.
            text = str(outcome).replace("process_batch()", f"{EXPORT}()", 1)
            outcomes[i] = GuestError(outcome.kind, text)
            if outcome.kind == ABI:
                return [outcomes[i]] * count
    return outcomes
