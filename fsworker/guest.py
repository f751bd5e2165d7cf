"""A loaded user function, whatever its calling convention: ``call(bytes) -> bytes | None``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import wasmtime

from fsworker.module_check import ModuleKind


class GuestError(Exception):
    """One message failed inside the guest (trap, error return, bad exit).

    ``kind`` is a short word for metrics and dead-letter properties.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class GuestInitError(Exception):
    """The guest could not be instantiated or initialised (a bad module)."""


class Guest(Protocol):
    """What the processing loop needs from a user function."""

    def call(self, data: bytes) -> bytes | None:
        """Process one input; None means no output record."""
        ...


def trap_message(exc: Exception) -> str:
    """The first line of a wasmtime error: what people need, without the backtrace."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_guest(
    engine: wasmtime.Engine, module: wasmtime.Module, kind: ModuleKind, scratch_dir: Path
) -> Guest:
    """Instantiate the guest for its kind; raises GuestInitError."""
    if kind is ModuleKind.ABI:
        from fsworker.guest_abi import AbiGuest

        return AbiGuest(engine, module)
    from fsworker.guest_stdio import StdioGuest

    return StdioGuest(engine, module, scratch_dir)
