"""Tiny modules in WAT for tests: no toolchain needed (wasmtime.wat2wasm)."""

from __future__ import annotations

from pathlib import Path

import wasmtime

# alloc hands out one fixed buffer at 1024; process echoes the input back.
# If the input starts with 'X' it traps (unreachable); with 'E' it returns -1.
ECHO = """
(module
  (memory (export "memory") 2)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.gt_u (local.get $len) (i32.const 0))
      (then
        (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 88)) (then unreachable))
        (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 69)) (then (return (i64.const -1))))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""

NO_EXPORTS = "(module)"

MISSING_PROCESS = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 0)))
"""

BAD_PROCESS_TYPE = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "process") (param i32 i32) (result i32) (i32.const 0)))
"""

UNKNOWN_IMPORT = """
(module
  (import "env" "launch_missiles" (func))
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "process") (param i32 i32) (result i64) (i64.const 0)))
"""

TRAP_IN_INITIALIZE = """
(module
  (memory (export "memory") 1)
  (func (export "_initialize") unreachable)
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "process") (param i32 i32) (result i64) (i64.const 0)))
"""


def wasm(wat: str) -> bytes:
    """Compile WAT text to wasm bytes."""
    return wasmtime.wat2wasm(wat)


def write(tmp: Path, name: str, wat: str) -> Path:
    """Write a fixture as ``<tmp>/<name>.wasm`` and return the path."""
    path = tmp / f"{name}.wasm"
    path.write_bytes(wasm(wat))
    return path


# Echoes its input, except that an input starting with 'L' never returns (a hung function).
LOOP_ON_L = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.gt_u (local.get $len) (i32.const 0))
      (then
        (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 76))
          (then (loop $forever (br $forever))))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""
