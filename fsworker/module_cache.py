"""Compile once, then load the serialized artifact (0.2-2 ms instead of up to seconds).

Artifacts live at ``<cache_dir>/<engine fingerprint>/<sha256 of the wasm>.cwasm``
so a wasmtime upgrade, a settings change (fuel metering on or off), a new
version of the memory-probe rewrite or another CPU never loads a stale one.
A component (lane 3) is cached apart, as ``<sha256>.component.cwasm``, and
loaded with ``Component.deserialize_file`` (a component's artifact is not a
module's: each kind only loads its own).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import wasmtime
from wasmtime import component as wc

from fsworker.engine import engine_fingerprint, engine_fuel
from fsworker.module_check import compile_module, is_component

Compiled = wasmtime.Module | wc.Component


def artifact_path(
    cache_dir: Path, wasm_sha256: str, fuel: bool = False, component: bool = False
) -> Path:
    """Where the compiled artifact for this wasm and this engine setting lives."""
    suffix = ".component.cwasm" if component else ".cwasm"
    return cache_dir / engine_fingerprint(fuel=fuel) / f"{wasm_sha256}{suffix}"


def _check_engine(engine: wasmtime.Engine, fuel: bool) -> None:
    made_with = engine_fuel(engine)
    if made_with is not None and made_with != bool(fuel):
        raise ValueError(
            f"engine was made with fuel={made_with} but the module is asked for with fuel={fuel}"
        )


def precompile(
    engine: wasmtime.Engine, wasm: bytes, cache_dir: Path, fuel: bool = False
) -> Compiled:
    """Compile ``wasm`` (raising InvalidModule) and store the artifact atomically."""
    _check_engine(engine, fuel)
    module = compile_module(engine, wasm)
    component = isinstance(module, wc.Component)
    target = artifact_path(cache_dir, hashlib.sha256(wasm).hexdigest(), fuel, component)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(module.serialize())
        os.replace(tmp, target)
    return module


def load(
    engine: wasmtime.Engine, wasm_path: Path, cache_dir: Path | None, fuel: bool = False
) -> Compiled:
    """Load a module, from the cache when it has a valid artifact, else compile it.

    ``fuel`` must match the engine (``new_engine(fuel=...)``): it picks the cache.
    """
    _check_engine(engine, fuel)
    wasm = wasm_path.read_bytes()
    if cache_dir is None:
        return compile_module(engine, wasm)
    component = is_component(wasm)
    target = artifact_path(cache_dir, hashlib.sha256(wasm).hexdigest(), fuel, component)
    if target.exists():
        try:
            if component:
                return wc.Component.deserialize_file(engine, str(target))
            return wasmtime.Module.deserialize_file(engine, str(target))
        except wasmtime.WasmtimeError:
            # A corrupt or foreign artifact: fall back to compiling and replace it.
            target.unlink(missing_ok=True)
    return precompile(engine, wasm, cache_dir, fuel)
