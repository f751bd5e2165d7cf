"""The WASI standard-IO lane: a command reads one message on stdin, writes its result.

This is how the original Function Stream spoke to wasm. It needs a new Store
and instance per message (about 200 us for C/Rust/Zig, 1 ms for Go, against a
few us for the ABI lane), so it exists for compatibility, not speed.
"""

from __future__ import annotations

from pathlib import Path

import wasmtime

from fsworker.guest import GuestError, trap_message


class StdioGuest:
    """A WASI command instantiated per message; stdin and stdout are scratch files."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module, scratch: Path) -> None:
        self._engine = engine
        self._module = module
        self._linker = wasmtime.Linker(engine)
        self._linker.define_wasi()
        scratch.mkdir(parents=True, exist_ok=True)
        self._stdin = scratch / "stdin"
        self._stdout = scratch / "stdout"

    def call(self, data: bytes) -> bytes | None:
        """Run the command once with ``data`` on stdin; return its stdout."""
        self._stdin.write_bytes(data)
        store = wasmtime.Store(self._engine)
        wasi = wasmtime.WasiConfig()
        wasi.stdin_file = str(self._stdin)
        wasi.stdout_file = str(self._stdout)
        wasi.inherit_stderr()
        store.set_wasi(wasi)
        try:
            instance = self._linker.instantiate(store, self._module)
            start = instance.exports(store)["_start"]
            start(store)  # type: ignore[operator]
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise GuestError("exit", f"WASI command exited with code {exc.code}") from None
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise GuestError("trap", f"wasm trap: {trap_message(exc)}") from None
        out = self._stdout.read_bytes()
        return out or None
