"""The wasmtime Engine configuration, shared by fsd (validation, precompile) and workers.

A serialized module only loads into an engine with the same wasmtime version and
the same settings, so everything that shapes the engine is here, and
``engine_fingerprint`` names it for the compiled-module cache.

Two engines exist: without fuel metering (the default) and with it, for
functions that set a fuel limit. ``consume_fuel`` changes the generated code
(a counter update in every block), so it is on only when asked for, and the
two kinds of compiled artifacts are cached apart.
"""

from __future__ import annotations

import hashlib
import platform
import weakref

import wasmtime

from fsworker.memory_probe import PROBE_VERSION

WASMTIME_VERSION = "50.0.1"

# Each setting that changes the generated code belongs in this table, so that
# the fingerprint below changes with it.
_SETTINGS: dict[str, object] = {
    "cranelift_opt_level": "speed",
    # The guest memory base never moves, so a host pointer to it stays valid.
    "memory_may_move": False,
    "wasm_multi_value": True,
    "wasm_bulk_memory": True,
    # Always on: calls get a deadline in epoch ticks (fsworker/limits.py).
    "epoch_interruption": True,
}

# Engines made here, with their fuel setting (to catch a mismatched cache lookup).
_FUEL_OF: weakref.WeakKeyDictionary[wasmtime.Engine, bool] = weakref.WeakKeyDictionary()


def _settings(fuel: bool) -> dict[str, object]:
    return {**_SETTINGS, "consume_fuel": bool(fuel)}


def new_config(fuel: bool = False) -> wasmtime.Config:
    """A fresh Config with this platform's settings (fuel metering on if asked)."""
    config = wasmtime.Config()
    for name, value in _settings(fuel).items():
        setattr(config, name, value)
    return config


def new_engine(fuel: bool = False) -> wasmtime.Engine:
    """An Engine with this platform's settings; ``fuel`` turns on fuel metering."""
    engine = wasmtime.Engine(new_config(fuel))
    _FUEL_OF[engine] = bool(fuel)
    return engine


def engine_fuel(engine: wasmtime.Engine) -> bool | None:
    """Whether ``engine`` meters fuel, if it was made by ``new_engine`` (else None)."""
    return _FUEL_OF.get(engine)


def engine_fingerprint(fuel: bool = False) -> str:
    """Identifies compiled artifacts: wasmtime version, settings, module rewrite, CPU."""
    settings = ",".join(f"{k}={v}" for k, v in sorted(_settings(fuel).items()))
    settings += f";memory_probe={PROBE_VERSION}"
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    return f"wasmtime-{WASMTIME_VERSION}-{platform.machine()}-{digest}"
