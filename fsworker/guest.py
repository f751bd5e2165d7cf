"""A loaded user function, whatever its calling convention, and the limits it runs under.

The processing loop calls ``Guest.call_batch(inputs)`` and gets one ``Outcome``
per input: the input's 0..N output records, or the ``GuestError`` that says why
that input failed. One bad message never raises; after a trap, a timeout, an
exhausted fuel budget or the memory limit, the guest is re-instantiated from
the compiled module before the next message.

Host API (docs/abi.md, imports from module ``fs``): ``open_guest(..., host=ctx)``
binds a module's ``fs`` imports to a ``HostContext`` (fsworker/host_context.py).
State, config and log imports change nothing else (``process_batch`` is still
used). A module that imports any ``fs.msg_*`` or ``fs.set_output_*`` function
(``guest.uses_message_metadata``) is called one message at a time, and then:

* ``call_batch(inputs, metas)`` calls ``host.begin_message(metas[i])`` before
  input ``i`` (an empty ``MessageMeta`` when ``metas`` is None);
* afterwards ``guest.last_output_meta`` is a list with one ``OutputMeta`` per
  input, in order: what the guest set for that input's output records (for a
  failed input, an empty one). It applies to every record of that input.

For any other guest ``last_output_meta`` is None after ``call_batch``: the
outputs take no metadata from the guest. ``call_batch(inputs)`` without
``metas`` is unchanged. State writes of a message that fails are discarded
(see AbiGuest).

``guest.before_call`` (None, or set by the processing loop): every lane calls it
with the most seconds the next wasm call may take under its time limit (the
timeout, times the messages of a ``process_batch`` call; the start-up limit
before an instance is rebuilt), so the loop can tell fsd it is busy and not
hung (docs/abi.md, "Time limits and the heartbeat"). Without a time limit it is
never called: nothing bounds the call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import wasmtime
import wasmtime.component

from fsworker.engine import engine_fuel
from fsworker.error_kinds import GUEST_KINDS, ErrorKind
from fsworker.limits import (
    UNLIMITED_FUEL,
    WASM_PAGE,
    MemoryProbe,
    deadline_ticks,
    fmt_bytes,
    memory_limit_hit,
    ticker,
)
from fsworker.module_check import ModuleKind

if TYPE_CHECKING:
    from fsworker.host_context import HostContext, MessageMeta, OutputMeta
    from fsworker.sandbox import Sandbox

# GuestError.kind values (fsworker/error_kinds.py), by the short names the guest lanes use.
TRAP = ErrorKind.TRAP
TIMEOUT = ErrorKind.TIMEOUT
MEMORY_LIMIT = ErrorKind.MEMORY_LIMIT
FUEL = ErrorKind.FUEL
ERROR = ErrorKind.ERROR
ABI = ErrorKind.ABI
EXIT = ErrorKind.EXIT
KINDS = GUEST_KINDS


class GuestError(Exception):
    """One message failed inside the guest (trap, limit, error return, bad exit).

    ``kind`` says which way it failed, for metrics and dead-letter properties
    (``KINDS``); the message is one line for people, with the numbers that matter.
    """

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __repr__(self) -> str:
        return f"GuestError({str(self.kind)!r}, {str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GuestError) and (self.kind, str(self)) == (other.kind, str(other))

    def __hash__(self) -> int:
        return hash((self.kind, str(self)))


class GuestInitError(Exception):
    """The guest could not be instantiated or initialised (a bad module)."""


@dataclass(frozen=True)
class GuestLimits:
    """Per-message limits; None means no limit of that kind."""

    timeout_ms: int | None = None  # wall-clock limit per message, via epoch interruption
    memory_limit: int | None = None  # max bytes of linear memory, via store limits
    fuel: int | None = None  # fuel per message (only if the engine has consume_fuel)

    def __post_init__(self) -> None:
        for name in ("timeout_ms", "memory_limit", "fuel"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"GuestLimits.{name} must be a positive integer, got {value!r}")


NO_LIMITS = GuestLimits()

Outcome = list[bytes] | GuestError  # 0..N output records, or why this input failed


class Guest(Protocol):
    """What the processing loop needs from a user function."""

    # After call_batch: one OutputMeta per input for a guest that uses message
    # metadata, else None (see the module docstring).
    last_output_meta: list[OutputMeta] | None
    # Called with the most seconds the next wasm call may take (module docstring).
    before_call: Callable[[float], None] | None

    def call_batch(
        self, inputs: Sequence[bytes], metas: Sequence[MessageMeta] | None = None
    ) -> list[Outcome]:
        """One outcome per input, in order; never raises for one bad message.

        ``metas`` (one per input) is what the guest reads through ``fs.msg_*``.
        """
        ...

    def call(self, data: bytes) -> list[bytes]:
        """Process one input: its output records. Raises GuestError."""
        ...


class BatchGuest:
    """For guests whose unit is a batch: ``call`` is a batch of one."""

    before_call: Callable[[float], None] | None = None

    def call_batch(
        self, inputs: Sequence[bytes], metas: Sequence[MessageMeta] | None = None
    ) -> list[Outcome]:
        raise NotImplementedError

    def call(self, data: bytes) -> list[bytes]:
        """Process one input; raises GuestError (and rebuilds the instance when needed)."""
        outcome = self.call_batch([data])[0]
        if isinstance(outcome, GuestError):
            raise outcome
        return outcome


_FRAME = re.compile(r"^\d+:\s+0x[0-9a-fA-F]+ - (.+)$")
_CAUSE_INDEX = re.compile(r"^\d+:\s*")


def trap_message(exc: Exception) -> str:
    """One line from a wasmtime error: the cause, its detail and the innermost frame.

    e.g. ``out of bounds memory access (memory fault at wasm address 0xf423f in
    linear memory of size 0x10000) in <wasm function 1>``
    """
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    frame = None
    if lines[0].startswith("error while executing at wasm backtrace"):
        for line in lines[1:]:
            match = _FRAME.match(line)
            if match:
                frame = match.group(1).removeprefix("<unknown>!")
                break
    if "Caused by:" in lines:
        causes = [_CAUSE_INDEX.sub("", c) for c in lines[lines.index("Caused by:") + 1 :]]
        causes = [c for c in causes if c] or [lines[0]]
        message = causes[-1].removeprefix("wasm trap: ")
        if len(causes) > 1:
            message += f" ({'; '.join(causes[:-1])})"
    else:
        message = lines[0]
    return f"{message} in {frame}" if frame else message


def classify_failure(
    exc: Exception,
    limits: GuestLimits,
    probe: MemoryProbe | None,
    memory_size: int | None,
    what: str = "wasm function",
) -> GuestError:
    """The GuestError for a call that raised ``exc`` (a Trap or WasmtimeError)."""
    code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
    if code is wasmtime.TrapCode.INTERRUPT:
        if limits.timeout_ms is None:  # pragma: no cover - no deadline is ever that close
            return GuestError(TIMEOUT, f"{what} was interrupted (epoch deadline)")
        return GuestError(TIMEOUT, f"{what} exceeded its time limit of {limits.timeout_ms} ms")
    if code is wasmtime.TrapCode.OUT_OF_FUEL:
        return GuestError(FUEL, f"{what} ran out of fuel (limit {limits.fuel} per message)")
    if isinstance(exc, wasmtime.ExitTrap):
        detail = f"{what} exited with code {exc.code} (WASI proc_exit)"
        kind = EXIT
    else:
        detail = f"wasm trap: {trap_message(exc)}"
        kind = TRAP
    limited = memory_limit_error(limits, probe, memory_size, detail)
    if limited is not None:
        return limited
    return GuestError(kind, detail)


def memory_limit_error(
    limits: GuestLimits,
    probe: MemoryProbe | None,
    memory_size: int | None,
    then: str,
    what: str = "wasm function",
) -> GuestError | None:
    """A memory-limit GuestError if the memory limit explains this failure, else None.

    With the module's probe (fsworker/memory_probe.py) this is exact: a memory.grow past
    the limit was refused during the call. Without one, it is "memory within one
    wasm page of the limit".
    """
    hit = memory_limit_hit(limits.memory_limit, probe, memory_size)
    if hit is None or limits.memory_limit is None:
        return None
    how = (
        f"memory.grow to {fmt_bytes(hit)} refused"
        if probe is not None
        else f"memory at {fmt_bytes(hit)}"
    )
    return GuestError(
        MEMORY_LIMIT,
        f"{what} hit its memory limit of {fmt_bytes(limits.memory_limit)} ({how}; then {then})",
    )


def meters_fuel(engine: wasmtime.Engine) -> bool:
    """Whether the engine was built with ``consume_fuel``."""
    known = engine_fuel(engine)
    if known is not None:
        return known
    try:
        wasmtime.Store(engine).set_fuel(0)
    except wasmtime.WasmtimeError:
        return False
    return True


# An instance's start-up code (_initialize, a component's runtime) may take longer
# than one message may: it gets at least this long.
INIT_TIMEOUT_MS = 10_000


def init_timeout_ms(limits: GuestLimits) -> int | None:
    """How long an instance's start-up may run (None: no limit)."""
    return None if limits.timeout_ms is None else max(limits.timeout_ms, INIT_TIMEOUT_MS)


def limited_store(
    engine: wasmtime.Engine,
    limits: GuestLimits,
    sandbox: Sandbox,
    *,
    metered: bool,
    stdout: bool = False,
) -> wasmtime.Store:
    """A store for one instance: WASI with the function's grants only, the memory limit,
    the start-up time limit, and unlimited fuel (calls set their own) when ``metered``.

    The guest's stderr (and with ``stdout`` its stdout) goes to the replica's log.
    Raises GuestInitError when a grant cannot be applied.
    """
    from fsworker.sandbox import SandboxError

    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    if stdout:
        wasi.inherit_stdout()
    wasi.inherit_stderr()
    try:
        sandbox.apply(wasi)
    except SandboxError as exc:
        raise GuestInitError(str(exc)) from None
    store.set_wasi(wasi)
    if limits.memory_limit is not None:
        store.set_limits(memory_size=limits.memory_limit)
    store.set_epoch_deadline(deadline_ticks(init_timeout_ms(limits)))
    if metered:
        store.set_fuel(UNLIMITED_FUEL)
    return store


def check_memory_fits(module: wasmtime.Module, limits: GuestLimits) -> None:
    """GuestInitError if the module's initial memory is already above its limit."""
    if limits.memory_limit is None:
        return
    types = [e.type for e in module.exports] + [i.type for i in module.imports]
    for ty in types:
        if isinstance(ty, wasmtime.MemoryType):
            need = ty.limits.min * WASM_PAGE
            if need > limits.memory_limit:
                raise GuestInitError(
                    f"module needs {fmt_bytes(need)} of memory at start, more than its "
                    f"memory limit of {fmt_bytes(limits.memory_limit)}"
                )


def open_guest(
    engine: wasmtime.Engine,
    module: wasmtime.Module | wasmtime.component.Component,
    kind: ModuleKind,
    scratch_dir: Path,
    limits: GuestLimits = GuestLimits(),
    *,
    batch: bool = True,
    fast: bool | None = None,
    host: HostContext | None = None,
    sandbox: Sandbox | None = None,
) -> Guest:
    """Instantiate the guest for its kind under ``limits``; raises GuestInitError.

    ``batch=False`` ignores a ``process_batch`` export (one ``process`` call per
    message); ``fast`` picks the call path (fsworker/fastcall.py; None: default).
    ``host`` serves the module's ``fs`` imports (the host API); a module with
    such imports and no ``host`` raises GuestInitError. ``sandbox``: the WASI
    grants (fsworker/sandbox.py); None grants nothing.
    Raises ValueError if ``limits.fuel`` is set but the engine does not meter fuel.
    A component (``ModuleKind.COMPONENT``) runs in fsworker/guest_component.py.
    """
    if limits.fuel is not None and not meters_fuel(engine):
        raise ValueError("a fuel limit needs an engine made with new_engine(fuel=True)")
    from fsworker.sandbox import NO_GRANTS

    grants = NO_GRANTS if sandbox is None else sandbox
    if kind is ModuleKind.COMPONENT:
        from fsworker.guest_component import ComponentGuest

        ticker.add(engine)
        return ComponentGuest(  # type: ignore[arg-type]
            engine, module, limits, fast=fast, batch=batch, host=host, sandbox=grants
        )
    check_memory_fits(module, limits)  # type: ignore[arg-type]
    ticker.add(engine)
    if kind is ModuleKind.ABI:
        from fsworker.guest_abi import AbiGuest

        return AbiGuest(engine, module, limits, batch=batch, fast=fast, host=host, sandbox=grants)
    from fsworker.guest_stdio import StdioGuest

    return StdioGuest(engine, module, scratch_dir, limits, grants)
