"""The wasmtime Engine configuration, shared by fsd (validation, precompile) and workers.

A serialized module only loads into an engine with the same wasmtime version and
the same settings, so everything that shapes the engine is here, and
``engine_fingerprint`` names it for the compiled-module cache.
"""

from __future__ import annotations

import hashlib
import platform

import wasmtime

WASMTIME_VERSION = "50.0.1"

# Each setting that changes the generated code belongs in this table, so that
# the fingerprint below changes with it.
_SETTINGS: dict[str, object] = {
    "cranelift_opt_level": "speed",
    # The guest memory base never moves, so a host pointer to it stays valid.
    "memory_may_move": False,
    "wasm_multi_value": True,
    "wasm_bulk_memory": True,
}


def new_config() -> wasmtime.Config:
    """A fresh Config with this platform's settings."""
    config = wasmtime.Config()
    for name, value in _SETTINGS.items():
        setattr(config, name, value)
    return config


def new_engine() -> wasmtime.Engine:
    """An Engine with this platform's settings."""
    return wasmtime.Engine(new_config())


def engine_fingerprint() -> str:
    """Identifies compiled artifacts: wasmtime version, settings and CPU architecture."""
    settings = ",".join(f"{k}={v}" for k, v in sorted(_SETTINGS.items()))
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    return f"wasmtime-{WASMTIME_VERSION}-{platform.machine()}-{digest}"
