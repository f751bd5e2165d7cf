"""The WASI standard-IO lane: a command reads one message on stdin, writes its result.

This is how the original Function Stream spoke to wasm. It needs a new Store
and instance per message (about 200 us for C/Rust/Zig, 1 ms for Go, against a
few us for the ABI lane), so it exists for compatibility, not speed. The same
limits apply as in the ABI lane: a deadline, a memory limit and fuel per
message, on each message's own store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import wasmtime

from fsworker.guest import (
    ERROR,
    EXIT,
    NO_LIMITS,
    GuestError,
    GuestLimits,
    Outcome,
    classify_failure,
    memory_limit_error,
    meters_fuel,
)
from fsworker.limits import UNLIMITED_FUEL, MemoryProbe, deadline_ticks, find_probe, ticker
from fsworker.sandbox import NO_GRANTS, Sandbox, SandboxError


class StdioGuest:
    """A WASI command instantiated per message; stdin and stdout are scratch files."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        module: wasmtime.Module,
        scratch: Path,
        limits: GuestLimits = NO_LIMITS,
        sandbox: Sandbox = NO_GRANTS,
    ) -> None:
        self._engine = engine
        self._sandbox = sandbox
        self._module = module
        self._limits = limits
        self._metered = meters_fuel(engine)
        self._linker = wasmtime.Linker(engine)
        self._linker.define_wasi()
        scratch.mkdir(parents=True, exist_ok=True)
        self._stdin = scratch / "stdin"
        self._stdout = scratch / "stdout"

    # The stdio lane has no host API, so its outputs never carry guest-set metadata.
    last_output_meta = None
    uses_message_metadata = False
    before_call: Callable[[float], None] | None = None  # fsworker/guest.py

    def call_batch(self, inputs: Sequence[bytes], metas: object = None) -> list[Outcome]:
        """One outcome per input, in order; never raises GuestError (``metas`` is unused)."""
        outcomes: list[Outcome] = []
        for data in inputs:
            try:
                outcomes.append(self.call(data))
            except GuestError as exc:
                outcomes.append(exc)
        return outcomes

    def call(self, data: bytes) -> list[bytes]:
        """Run the command once with ``data`` on stdin; its stdout is the one output
        record (none if empty). Raises GuestError."""
        limits = self._limits
        self._stdin.write_bytes(data)
        store = wasmtime.Store(self._engine)
        wasi = wasmtime.WasiConfig()
        wasi.stdin_file = str(self._stdin)
        wasi.stdout_file = str(self._stdout)
        wasi.inherit_stderr()
        try:
            self._sandbox.apply(wasi)  # what the function's options grant, else nothing
        except SandboxError as exc:
            raise GuestError(ERROR, str(exc)) from None
        store.set_wasi(wasi)
        if limits.memory_limit is not None:
            store.set_limits(memory_size=limits.memory_limit)
        if limits.timeout_ms is not None and self.before_call is not None:
            self.before_call(limits.timeout_ms / 1000)  # instantiation and _start together
        store.set_epoch_deadline(deadline_ticks(limits.timeout_ms))
        if self._metered:
            store.set_fuel(limits.fuel if limits.fuel is not None else UNLIMITED_FUEL)
        exports = None
        ticker.enter()
        try:
            instance = self._linker.instantiate(store, self._module)
            exports = instance.exports(store)
            start = exports["_start"]
            start(store)  # type: ignore[operator]
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                detail = f"WASI command exited with code {exc.code}"
                limited = memory_limit_error(limits, *self._memory_state(store, exports), detail)
                raise (limited or GuestError(EXIT, detail)) from None
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise classify_failure(exc, limits, *self._memory_state(store, exports)) from None
        finally:
            ticker.leave()
        out = self._stdout.read_bytes()
        return [out] if out else []

    @staticmethod
    def _memory_state(
        store: wasmtime.Store, exports: wasmtime.InstanceExports | None
    ) -> tuple[MemoryProbe | None, int | None]:
        if exports is None:
            return None, None
        memory = exports.get("memory")
        size = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else None
        return find_probe(store, exports), size
