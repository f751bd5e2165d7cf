"""The Function Stream ABI (docs/abi.md): one long-lived instance, called per message."""

from __future__ import annotations

import wasmtime

from fsworker.guest import GuestError, GuestInitError, trap_message

_U64 = (1 << 64) - 1


class AbiGuest:
    """An instance exporting ``memory``, ``alloc(len)->ptr`` and ``process(ptr,len)->i64``."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module) -> None:
        self._engine = engine
        self._module = module
        self._instantiate()

    def _instantiate(self) -> None:
        store = wasmtime.Store(self._engine)
        wasi = wasmtime.WasiConfig()
        # Guest stderr goes to the worker's log; nothing else of the host is granted.
        wasi.inherit_stderr()
        store.set_wasi(wasi)
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        try:
            instance = linker.instantiate(store, self._module)
            exports = instance.exports(store)
            init = exports.get("_initialize")
            if isinstance(init, wasmtime.Func):
                init(store)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise GuestInitError(f"module failed to initialise: {trap_message(exc)}") from None
        self._store = store
        self._memory: wasmtime.Memory = exports["memory"]  # type: ignore[assignment]
        self._alloc: wasmtime.Func = exports["alloc"]  # type: ignore[assignment]
        self._process: wasmtime.Func = exports["process"]  # type: ignore[assignment]

    def call(self, data: bytes) -> bytes | None:
        """Run ``process`` on one input; raises GuestError and rebuilds after a trap."""
        store = self._store
        try:
            ptr = self._alloc(store, len(data))
            if data:
                self._memory.write(store, data, ptr)
            packed = self._process(store, ptr, len(data))
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            # A trap can leave the instance's memory in any state: start a fresh one.
            message = trap_message(exc)
            self._instantiate()
            raise GuestError("trap", f"wasm trap: {message}") from None
        if packed < 0:
            raise GuestError("error", f"process() returned error code {packed}")
        packed &= _U64
        out_ptr, out_len = packed >> 32, packed & 0xFFFFFFFF
        if out_len == 0:
            return None
        size = self._memory.data_len(store)
        if out_ptr + out_len > size:
            raise GuestError(
                "abi",
                f"process() returned output [{out_ptr}, +{out_len}) outside memory of {size} bytes",
            )
        return bytes(self._memory.read(store, out_ptr, out_ptr + out_len))
