"""The batch framing of lanes 1 and 3 (docs/abi.md): ``process_batch`` / ``process-batch``.

A call's argument is a u32 count, then a u32 length + bytes per input. Its result
is, per input, an i32 ``n`` and then ``n`` records (u32 length + bytes), or for
``n < 0`` a u32 length + UTF-8 error text. A call carries at most
``MAX_BATCH_RECORDS`` inputs and about ``batch_bytes_cap`` bytes; a record larger
than the cap goes alone. With a memory limit the cap is at most 1/8 of it, so a
batch does not hit the limit where messages one by one would not.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from fsworker.error_kinds import ErrorKind
from fsworker.guest import GuestError, Outcome

MAX_BATCH_RECORDS = 256
MAX_BATCH_BYTES = 4 << 20
MIN_BATCH_BYTES = 64 << 10

LANE1_EXPORT = "process_batch"  # a core module's export
LANE3_EXPORT = "process-batch"  # a component's export

ABI = ErrorKind.ABI
ERROR = ErrorKind.ERROR
_I32 = struct.Struct("<i")
_U32S = struct.Struct("<I")
_I32_U32 = struct.Struct("<iI")


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
    """A batch call's argument: u32 count, then u32 length + bytes per input."""
    parts = [len(inputs).to_bytes(4, "little")]
    for data in inputs:
        parts.append(len(data).to_bytes(4, "little"))
        parts.append(data)
    return b"".join(parts)


def decode(out: bytes, count: int, export: str = LANE1_EXPORT) -> list[Outcome]:
    """Strictly decode the output of one batch call (``export``) for ``count`` inputs.

    Any framing error makes every input of the call fail with an "abi" error.
    Each step consumes at least 4 bytes, so garbage cannot make this loop long.
    """
    end = len(out)
    off = 0
    outcomes: list[Outcome] = []

    def abi(reason: str) -> list[Outcome]:
        error = GuestError(ABI, f"{export}() returned malformed output: {reason}")
        return [error] * count

    append = outcomes.append
    for index in range(count):
        if off + 8 <= end:
            # The common case first: one record (n == 1).
            n, length = _I32_U32.unpack_from(out, off)
            if n == 1 and length <= end - off - 8:
                off += 8
                append([out[off : off + length]])
                off += length
                continue
        if off + 4 > end:
            return abi(f"it ends ({end} bytes) before the result of input {index} of {count}")
        (n,) = _I32.unpack_from(out, off)
        off += 4
        if n >= 0:
            if n > (end - off) // 4:
                return abi(f"input {index} claims {n} records, more than {end - off} bytes hold")
            records: list[bytes] = []
            for _ in range(n):
                if off + 4 > end:
                    return abi(f"record length of input {index} runs past the end")
                (length,) = _U32S.unpack_from(out, off)
                off += 4
                if length > end - off:
                    return abi(
                        f"a record of input {index} claims {length} bytes, only {end - off} remain"
                    )
                records.append(out[off : off + length])
                off += length
            outcomes.append(records)
        else:
            if off + 4 > end:
                return abi(f"error text length of input {index} runs past the end")
            (length,) = _U32S.unpack_from(out, off)
            off += 4
            if length > end - off:
                return abi(
                    f"the error text of input {index} claims {length} bytes, "
                    f"only {end - off} remain"
                )
            text = out[off : off + length].decode("utf-8", "replace")
            off += length
            text = " ".join(text.split())[:1000] or "(no text)"
            outcomes.append(GuestError(ERROR, f"{export}() rejected the input ({n}): {text}"))
    if off != end:
        return abi(f"{end - off} bytes left after the last result")
    return outcomes
