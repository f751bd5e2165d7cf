"""A guest that waits, without using CPU, for a fixed time per message (autoscaling tests).

Like a function that calls a slow service: one replica manages about
1000 / SLEEP_MS messages a second, and more replicas drain a backlog faster
even on a two-core machine. It sleeps with WASI poll_oneoff on a relative
clock subscription, then echoes its input.
"""

from __future__ import annotations

from pathlib import Path

from tests.wasm_fixtures import wasm

SLEEP_MS = 1


def slow_echo_wat(sleep_ms: int = SLEEP_MS) -> str:
    """WAT of an echo that sleeps ``sleep_ms`` per message."""
    nanos = sleep_ms * 1_000_000
    # Memory: the subscription at 0 (48 bytes), the event at 64 (32), nevents at 96,
    # the input buffer at 1024.
    return f"""
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (i64.store (i32.const 0) (i64.const 1))          ;; userdata
    (i32.store8 (i32.const 8) (i32.const 0))         ;; tag: clock
    (i32.store (i32.const 16) (i32.const 1))         ;; clock id: monotonic
    (i64.store (i32.const 24) (i64.const {nanos}))   ;; timeout, relative
    (i64.store (i32.const 32) (i64.const 0))         ;; precision
    (i32.store16 (i32.const 40) (i32.const 0))       ;; flags: relative
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 96)))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""


def write_slow_echo(directory: Path, sleep_ms: int = SLEEP_MS) -> Path:
    """Write the module as ``<directory>/slow-echo.wasm``; return its path."""
    path = directory / "slow-echo.wasm"
    path.write_bytes(wasm(slow_echo_wat(sleep_ms)))
    return path
