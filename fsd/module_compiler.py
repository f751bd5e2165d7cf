"""Compiles, checks and stores modules off fsd's main loop.

A 20 MB component takes seconds to compile; done on the main loop it would
freeze every other request (``fsctl status`` included). One worker thread
does it: wasmtime releases the GIL while it compiles (its C API is called
through ctypes), so the loop keeps answering.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fscommon.protocol import ErrorCode
from fsd.control_server import HandlerError
from fsd.package_store import PackageStore
from fsworker.module_cache import precompile
from fsworker.module_check import InvalidModule, classify, uses_state


@dataclass(frozen=True)
class StoredModule:
    """A checked module in the package store."""

    package: str  # sha256
    kind: str  # fsworker.module_check.ModuleKind value
    uses_state: bool = False  # imports the state API (core modules; a component cannot tell)


class Compilation:
    """One module being compiled; ``result()`` is polled from the main loop."""

    def __init__(self, future: Future[StoredModule], source: str) -> None:
        self._future = future
        self._source = source

    def result(self) -> StoredModule | None:
        """The stored module, None while compiling; raises HandlerError if it is invalid."""
        if not self._future.done():
            return None
        try:
            return self._future.result()
        except InvalidModule as exc:
            raise HandlerError(ErrorCode.INVALID_MODULE, f"{self._source}: {exc}") from None


class ModuleCompiler:
    """Validates a module, caches its compiled form per host, stores it by digest."""

    def __init__(self, engines: dict[bool, Any], compiled_dir: Path, packages: PackageStore):
        self._engines = engines
        self._compiled_dir = compiled_dir
        self._packages = packages
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsd-compile")
        # Cluster mode: makes a stored module fetchable by every member.
        self.publish: Callable[[bytes], None] | None = None

    def submit(
        self, wasm: bytes, source: str, fuel: bool, before: Callable[[], None] | None = None
    ) -> Compilation:
        """Start compiling ``wasm`` (named ``source`` in errors) in the background.

        ``before`` runs first in the same thread (slow preparation that must not
        block the main loop either); its HandlerError is the request's error.
        """
        return Compilation(self._pool.submit(self.compile, wasm, fuel, before), source)

    def compile(
        self, wasm: bytes, fuel: bool, before: Callable[[], None] | None = None
    ) -> StoredModule:
        """Compile, classify and store (blocking; the pool thread calls it)."""
        if before is not None:
            before()
        module = precompile(self._engines[fuel], wasm, self._compiled_dir, fuel=fuel)
        kind = classify(module)
        stored = StoredModule(self._packages.put(wasm), str(kind), uses_state(module))
        if self.publish is not None:
            self.publish(wasm)
        return stored

    def close(self) -> None:
        """Stop the thread (a compile in progress finishes first)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
