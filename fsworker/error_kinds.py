"""Why an input failed: the ``fs-error-kind`` of its dead letter and the metrics label.

The guest kinds come from a call (fsworker/guest.py GuestError); ``SCHEMA`` from
decoding the input or encoding an output; ``CRASH`` from the attempt ledger, for a
message whose every attempt ended with the worker dying (docs/guarantees.md).
"""

from __future__ import annotations

import enum


class ErrorKind(enum.StrEnum):
    """One word per way an input can fail."""

    TRAP = "trap"  # the guest trapped (unreachable, out-of-bounds access, stack overflow, ...)
    TIMEOUT = "timeout"  # the call ran past its time limit (epoch deadline)
    MEMORY_LIMIT = "memory-limit"  # it failed after a grow past its memory limit was refused
    FUEL = "fuel"  # the call used up its fuel
    ERROR = "error"  # the guest reported a failure (negative result, rejected input)
    ABI = "abi"  # the guest broke the ABI (output outside memory, malformed batch output)
    EXIT = "exit"  # a WASI command exited with a non-zero code (stdio lane)
    SCHEMA = "schema"  # the input did not decode, or an output did not encode, as configured
    CRASH = "crash"  # the worker died with it in flight on every attempt


# What a guest call can report (GuestError.kind).
GUEST_KINDS = (
    ErrorKind.TRAP,
    ErrorKind.TIMEOUT,
    ErrorKind.MEMORY_LIMIT,
    ErrorKind.FUEL,
    ErrorKind.ERROR,
    ErrorKind.ABI,
    ErrorKind.EXIT,
)

Failure = tuple[ErrorKind, str]  # (fs-error-kind, one-line error)
