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


# --- limits, batches and ABI errors (fsworker/guest_abi.py, fsworker/limits.py) ---

# Memory hog. Input 'M': grow one page at a time until refused, then trap.
# 'W': grow a page and write to it, until refused, then keep writing past the end
# (an out-of-bounds trap, as a C program that ignores a failed malloc would).
# 'B': one 64 MiB grow, refused far below the limit, reported as error -1.
# 'S': the same refused grow, survived (echoes). 'E': error -2. 'X': a plain trap.
MEMORY_HOG = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (local $c i32) (local $page i32)
    (if (local.get $len) (then (local.set $c (i32.load8_u (local.get $ptr)))))
    (if (i32.eq (local.get $c) (i32.const 77))
      (then
        (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        unreachable))
    (if (i32.eq (local.get $c) (i32.const 87))
      (then
        (loop $more
          (local.set $page (memory.grow (i32.const 1)))
          (if (i32.ne (local.get $page) (i32.const -1))
            (then
              (i32.store8 (i32.mul (local.get $page) (i32.const 65536)) (i32.const 1))
              (br $more))))
        (local.set $page (memory.size))
        (loop $touch
          (i32.store8 (i32.mul (local.get $page) (i32.const 65536)) (i32.const 1))
          (local.set $page (i32.add (local.get $page) (i32.const 1)))
          (br $touch))))
    (if (i32.eq (local.get $c) (i32.const 66))
      (then
        (if (i32.eq (memory.grow (i32.const 1024)) (i32.const -1))
          (then (return (i64.const -1))))))
    (if (i32.eq (local.get $c) (i32.const 83)) (then (drop (memory.grow (i32.const 1024)))))
    (if (i32.eq (local.get $c) (i32.const 69)) (then (return (i64.const -2))))
    (if (i32.eq (local.get $c) (i32.const 88)) (then unreachable))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""

# Echoes its input; an input starting with 'F' first burns about 3 * 10^8 instructions
# (a fraction of a second without fuel metering, out of fuel with a small budget).
FUEL_BURNER = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32)
    (if (local.get $len)
      (then
        (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 70))
          (then
            (local.set $i (i32.const 100000000))
            (loop $burn
              (local.set $i (i32.sub (local.get $i) (i32.const 1)))
              (br_if $burn (local.get $i)))))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""

# Breaks the ABI: an input of more than 100 bytes gets a pointer outside memory
# from alloc; 'O' makes process return output outside memory.
BAD_OUTPUT = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $len i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $len) (i32.const 100))
      (then (i32.const 70000)) (else (i32.const 1024))))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 79))
      (then (return (i64.or (i64.shl (i64.const 65000) (i64.const 32)) (i64.const 1000)))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""

# The batch ABI (docs/abi.md). process echoes ('X' traps, 'E' returns -1, 'L' loops).
# process_batch answers each input by its first byte: 'Z' no record, 'T' three
# copies, 'E' a failure (n = -1 and a text), 'X' traps and 'L' loops (the whole
# call), anything else one copy. Inputs up to 64 KiB; outputs go at 128 KiB.
BATCH_ECHO = """
(module
  (memory (export "memory") 4)
  (global $out (mut i32) (i32.const 0))
  (data (i32.const 512) "rejected: starts with E")
  (func (export "alloc") (param $len i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $len) (i32.const 65536))
      (then (i32.const 0)) (else (i32.const 1024))))
  (func $first (param $p i32) (param $n i32) (result i32)
    (if (result i32) (local.get $n)
      (then (i32.load8_u (local.get $p))) (else (i32.const 0))))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (local $c i32)
    (local.set $c (call $first (local.get $ptr) (local.get $len)))
    (if (i32.eq (local.get $c) (i32.const 88)) (then unreachable))
    (if (i32.eq (local.get $c) (i32.const 69)) (then (return (i64.const -1))))
    (if (i32.eq (local.get $c) (i32.const 76)) (then (loop $l (br $l))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))
  (func $put32 (param $v i32)
    (i32.store (global.get $out) (local.get $v))
    (global.set $out (i32.add (global.get $out) (i32.const 4))))
  (func $record (param $p i32) (param $n i32)
    (call $put32 (local.get $n))
    (memory.copy (global.get $out) (local.get $p) (local.get $n))
    (global.set $out (i32.add (global.get $out) (local.get $n))))
  (func (export "process_batch") (param $ptr i32) (param $len i32) (result i64)
    (local $count i32) (local $i i32) (local $at i32) (local $n i32) (local $p i32) (local $c i32)
    (global.set $out (i32.const 131072))
    (local.set $count (i32.load (local.get $ptr)))
    (local.set $at (i32.add (local.get $ptr) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $n (i32.load (local.get $at)))
        (local.set $p (i32.add (local.get $at) (i32.const 4)))
        (local.set $at (i32.add (local.get $p) (local.get $n)))
        (local.set $c (call $first (local.get $p) (local.get $n)))
        (if (i32.eq (local.get $c) (i32.const 88)) (then unreachable))
        (if (i32.eq (local.get $c) (i32.const 76)) (then (loop $l (br $l))))
        (if (i32.eq (local.get $c) (i32.const 69))
          (then
            (call $put32 (i32.const -1))
            (call $record (i32.const 512) (i32.const 23)))
          (else
            (if (i32.eq (local.get $c) (i32.const 90))
              (then (call $put32 (i32.const 0)))
              (else
                (if (i32.eq (local.get $c) (i32.const 84))
                  (then
                    (call $put32 (i32.const 3))
                    (call $record (local.get $p) (local.get $n))
                    (call $record (local.get $p) (local.get $n))
                    (call $record (local.get $p) (local.get $n)))
                  (else
                    (call $put32 (i32.const 1))
                    (call $record (local.get $p) (local.get $n))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.or
      (i64.shl (i64.const 131072) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $out) (i32.const 131072))))))
"""

# process_batch returns broken framing, chosen by the first byte of the first input:
# 'C' claims 5 records but holds one; 'R' a record length past the end; 'T' trailing
# bytes; 'N' n < 0 without its text; 'O' output outside memory; else an empty output.
BATCH_GARBAGE = """
(module
  (memory (export "memory") 1)
  (data (i32.const 256) "\\05\\00\\00\\00\\01\\00\\00\\00a")
  (data (i32.const 300) "\\01\\00\\00\\00\\ff\\ff\\ff\\7f")
  (data (i32.const 400) "\\01\\00\\00\\00\\01\\00\\00\\00ajunk")
  (data (i32.const 500) "\\ff\\ff\\ff\\ff")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))
  (func $at (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))
  (func (export "process_batch") (param $ptr i32) (param $len i32) (result i64)
    (local $c i32)
    (local.set $c (i32.load8_u (i32.add (local.get $ptr) (i32.const 8))))
    (if (i32.eq (local.get $c) (i32.const 67))
      (then (return (call $at (i32.const 256) (i32.const 9)))))
    (if (i32.eq (local.get $c) (i32.const 82))
      (then (return (call $at (i32.const 300) (i32.const 8)))))
    (if (i32.eq (local.get $c) (i32.const 84))
      (then (return (call $at (i32.const 400) (i32.const 13)))))
    (if (i32.eq (local.get $c) (i32.const 78))
      (then (return (call $at (i32.const 500) (i32.const 4)))))
    (if (i32.eq (local.get $c) (i32.const 79))
      (then (return (call $at (i32.const 65000) (i32.const 1000)))))
    (i64.const 0)))
"""

# WASI commands for the stdio lane's limits: a hung one, a memory hog, one that exits 3.
STDIO_LOOP = """
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))
"""

STDIO_HOG = """
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
"""

STDIO_EXIT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))
"""
