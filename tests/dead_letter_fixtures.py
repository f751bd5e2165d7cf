"""WAT modules for the local-run and dead-letter tests (beside tests/wasm_fixtures.py)."""

from __future__ import annotations

# The "fixed" version of wasm_fixtures.ECHO: echoes every input, 'X' and 'E' included.
ECHO_ALL = """
(module
  (memory (export "memory") 2)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""

# A memory bomb: an input starting with 'M' grows memory 16 pages at a time until refused,
# then traps; anything else is echoed.
MEMORY_BOMB = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 77))
      (then
        (loop $more
          (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        unreachable))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))
"""
