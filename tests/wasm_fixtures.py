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

# Pieces the batch modules below share (spliced in by _wat): $first (an input's first
# byte, 0 when empty), $put32/$record (append to the output at $out), and the
# process_batch loop over the inputs ($p/$n: one input; outputs at 128 KiB).
_WAT_PIECES = {
    "$FIRST": """\
  (func $first (param $p i32) (param $n i32) (result i32)
    (if (result i32) (local.get $n)
      (then (i32.load8_u (local.get $p))) (else (i32.const 0))))""",
    "$PUT_RECORD": """\
  (func $put32 (param $v i32)
    (i32.store (global.get $out) (local.get $v))
    (global.set $out (i32.add (global.get $out) (i32.const 4))))
  (func $record (param $p i32) (param $n i32)
    (call $put32 (local.get $n))
    (memory.copy (global.get $out) (local.get $p) (local.get $n))
    (global.set $out (i32.add (global.get $out) (local.get $n))))""",
    "$BATCH_HEAD": """\
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
        (local.set $at (i32.add (local.get $p) (local.get $n)))""",
    "$BATCH_TAIL": """\
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.or
      (i64.shl (i64.const 131072) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $out) (i32.const 131072))))))""",
}


def _wat(text: str) -> str:
    """``text`` with every shared piece (a line such as ``$FIRST``) spliced in."""
    for name, piece in _WAT_PIECES.items():
        text = text.replace(name + "\n", piece + "\n")
    return text


# The batch ABI (docs/abi.md). process echoes ('X' traps, 'E' returns -1, 'L' loops).
# process_batch answers each input by its first byte: 'Z' no record, 'T' three
# copies, 'E' a failure (n = -1 and a text), 'X' traps and 'L' loops (the whole
# call), anything else one copy. Inputs up to 64 KiB; outputs go at 128 KiB.
BATCH_ECHO = _wat("""
(module
  (memory (export "memory") 4)
  (global $out (mut i32) (i32.const 0))
  (data (i32.const 512) "rejected: starts with E")
  (func (export "alloc") (param $len i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $len) (i32.const 65536))
      (then (i32.const 0)) (else (i32.const 1024))))
$FIRST
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (local $c i32)
    (local.set $c (call $first (local.get $ptr) (local.get $len)))
    (if (i32.eq (local.get $c) (i32.const 88)) (then unreachable))
    (if (i32.eq (local.get $c) (i32.const 69)) (then (return (i64.const -1))))
    (if (i32.eq (local.get $c) (i32.const 76)) (then (loop $l (br $l))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))
$PUT_RECORD
$BATCH_HEAD
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
$BATCH_TAIL
""")

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


# --- the host API, version 1 (fsworker/host_api.py, docs/abi.md "Host API") ---

_HOST_IMPORTS = """
  (import "fs" "state_get" (func $state_get (param i32 i32 i32 i32 i32)))
  (import "fs" "state_put" (func $state_put (param i32 i32 i32 i32)))
  (import "fs" "state_delete" (func $state_delete (param i32 i32)))
  (import "fs" "state_add" (func $state_add (param i32 i32 i64 i32)))
  (import "fs" "config_get" (func $config_get (param i32 i32 i32 i32 i32)))
  (import "fs" "log" (func $log (param i32 i32 i32)))
  (import "fs" "msg_key" (func $msg_key (param i32 i32 i32)))
  (import "fs" "msg_property" (func $msg_property (param i32 i32 i32 i32 i32)))
  (import "fs" "msg_event_time" (func $msg_event_time (param i32)))
  (import "fs" "set_output_key" (func $set_output_key (param i32 i32)))
  (import "fs" "set_output_property" (func $set_output_property (param i32 i32 i32 i32)))
  (import "fs" "set_output_event_time" (func $set_output_event_time (param i64)))
"""

# Every import, driven by the first byte of the input (the rest is the argument; inputs
# land at 1024, outputs go at 16384). Reads use a 4-byte buffer first and call again
# with the full length: the output is '=', then '1' or '2' (calls made), then the value,
# or '!' when missing. 'g' state_get, 'c' config_get, 'r' msg_property, 'k' msg_key,
# 'h' state_get once with cap 4 into a '#'-filled buffer (output: the i32 length, then
# 8 bytes of buffer); 'p' state_put (byte 1: key length, then key, then value),
# 'd' state_delete, 'a' state_add 5 (output: the i64), 'l' log (byte 1: '0'..'3'),
# 't' msg_event_time (the i64). 'K' set_output_key, 'P' set_output_property (byte 1:
# name length), 'T' set_output_event_time (8 bytes LE), each echoing the input.
# Misuse: 'B' a key pointer outside memory, 'S' a buffer running past memory,
# 'O' state_add with its out_ptr outside memory, 'W' state_put then a trap, 'N'
# state_put then error -1. Anything else is echoed.
HOST_API = (
    """
(module"""
    + _HOST_IMPORTS
    + """
  (memory (export "memory") 2)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func $out (param $len i32) (result i64)
    (i64.or (i64.const 70368744177664) (i64.extend_i32_u (local.get $len))))
  (func $echo (param $len i32) (result i64)
    (i64.or (i64.const 4398046511104) (i64.extend_i32_u (local.get $len))))
  (func $get (param $which i32) (param $kp i32) (param $kl i32) (param $buf i32) (param $cap i32)
    (if (i32.eq (local.get $which) (i32.const 0))
      (then (call $state_get (local.get $kp) (local.get $kl) (local.get $buf) (local.get $cap)
                             (i32.const 512))))
    (if (i32.eq (local.get $which) (i32.const 1))
      (then (call $config_get (local.get $kp) (local.get $kl) (local.get $buf) (local.get $cap)
                              (i32.const 512))))
    (if (i32.eq (local.get $which) (i32.const 2))
      (then (call $msg_property (local.get $kp) (local.get $kl) (local.get $buf)
                                (local.get $cap) (i32.const 512))))
    (if (i32.eq (local.get $which) (i32.const 3))
      (then (call $msg_key (local.get $buf) (local.get $cap) (i32.const 512)))))
  (func $fetch (param $which i32) (param $kp i32) (param $kl i32) (result i64)
    (local $n i32)
    (i32.store (i32.const 512) (i32.const 0x5a5a5a5a))
    (call $get (local.get $which) (local.get $kp) (local.get $kl) (i32.const 16386) (i32.const 4))
    (local.set $n (i32.load (i32.const 512)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then
        (i32.store8 (i32.const 16384) (i32.const 33))
        (return (call $out (i32.const 1)))))
    (i32.store8 (i32.const 16384) (i32.const 61))
    (i32.store8 (i32.const 16385) (i32.const 49))
    (if (i32.gt_u (local.get $n) (i32.const 4))
      (then
        (call $get (local.get $which) (local.get $kp) (local.get $kl) (i32.const 16386)
                   (local.get $n))
        (local.set $n (i32.load (i32.const 512)))
        (i32.store8 (i32.const 16385) (i32.const 50))))
    (call $out (i32.add (local.get $n) (i32.const 2))))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (local $c i32) (local $k i32) (local $rest i32)
    (if (i32.eqz (local.get $len)) (then (return (call $echo (i32.const 0)))))
    (local.set $c (i32.load8_u (i32.const 1024)))
    (local.set $rest (i32.sub (local.get $len) (i32.const 1)))
    (local.set $k (i32.load8_u (i32.const 1025)))
    (if (i32.eq (local.get $c) (i32.const 103))
      (then (return (call $fetch (i32.const 0) (i32.const 1025) (local.get $rest)))))
    (if (i32.eq (local.get $c) (i32.const 99))
      (then (return (call $fetch (i32.const 1) (i32.const 1025) (local.get $rest)))))
    (if (i32.eq (local.get $c) (i32.const 114))
      (then (return (call $fetch (i32.const 2) (i32.const 1025) (local.get $rest)))))
    (if (i32.eq (local.get $c) (i32.const 107))
      (then (return (call $fetch (i32.const 3) (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 104))
      (then
        (i64.store (i32.const 16388) (i64.const 0x2323232323232323))
        (call $state_get (i32.const 1025) (local.get $rest) (i32.const 16388) (i32.const 4)
                         (i32.const 16384))
        (return (call $out (i32.const 12)))))
    (if (i32.eq (local.get $c) (i32.const 112))
      (then
        (call $state_put (i32.const 1026) (local.get $k)
                         (i32.add (i32.const 1026) (local.get $k))
                         (i32.sub (local.get $rest) (i32.add (local.get $k) (i32.const 1))))
        (return (call $out (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 100))
      (then
        (call $state_delete (i32.const 1025) (local.get $rest))
        (return (call $out (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 97))
      (then
        (call $state_add (i32.const 1025) (local.get $rest) (i64.const 5) (i32.const 16384))
        (return (call $out (i32.const 8)))))
    (if (i32.eq (local.get $c) (i32.const 108))
      (then
        (call $log (i32.sub (local.get $k) (i32.const 48)) (i32.const 1026)
                   (i32.sub (local.get $rest) (i32.const 1)))
        (return (call $out (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 116))
      (then
        (call $msg_event_time (i32.const 16384))
        (return (call $out (i32.const 8)))))
    (if (i32.eq (local.get $c) (i32.const 75))
      (then (call $set_output_key (i32.const 1025) (local.get $rest))))
    (if (i32.eq (local.get $c) (i32.const 80))
      (then
        (call $set_output_property
              (i32.const 1026) (local.get $k)
              (i32.add (i32.const 1026) (local.get $k))
              (i32.sub (local.get $rest) (i32.add (local.get $k) (i32.const 1))))))
    (if (i32.eq (local.get $c) (i32.const 84))
      (then (call $set_output_event_time (i64.load (i32.const 1025)))))
    (if (i32.eq (local.get $c) (i32.const 66))
      (then
        (call $state_get (i32.const 0x7fff0000) (i32.const 4) (i32.const 16384) (i32.const 16)
                         (i32.const 512))))
    (if (i32.eq (local.get $c) (i32.const 83))
      (then
        (call $state_get (i32.const 1025) (local.get $rest) (i32.const 16384)
                         (i32.const 0x100000) (i32.const 512))))
    (if (i32.eq (local.get $c) (i32.const 79))
      (then
        (call $state_add (i32.const 1025) (local.get $rest) (i64.const 1) (i32.const -16))))
    (if (i32.eq (local.get $c) (i32.const 87))
      (then
        (call $state_put (i32.const 1025) (local.get $rest) (i32.const 1025) (local.get $rest))
        unreachable))
    (if (i32.eq (local.get $c) (i32.const 78))
      (then
        (call $state_put (i32.const 1025) (local.get $rest) (i32.const 1025) (local.get $rest))
        (return (i64.const -1))))
    (call $echo (local.get $len))))
"""
)

# State only, with process_batch: each input adds 1 to the state key equal to the
# input, then is echoed; 'E...' is then rejected (n = -1), 'X...' traps the call.
STATE_BATCH = _wat("""
(module
  (import "fs" "state_add" (func $state_add (param i32 i32 i64 i32)))
  (memory (export "memory") 4)
  (global $out (mut i32) (i32.const 0))
  (data (i32.const 512) "rejected")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
$FIRST
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (local $c i32)
    (call $state_add (local.get $ptr) (local.get $len) (i64.const 1) (i32.const 600))
    (local.set $c (call $first (local.get $ptr) (local.get $len)))
    (if (i32.eq (local.get $c) (i32.const 88)) (then unreachable))
    (if (i32.eq (local.get $c) (i32.const 69)) (then (return (i64.const -1))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))
$PUT_RECORD
$BATCH_HEAD
        (call $state_add (local.get $p) (local.get $n) (i64.const 1) (i32.const 600))
        (local.set $c (call $first (local.get $p) (local.get $n)))
        (if (i32.eq (local.get $c) (i32.const 88)) (then unreachable))
        (if (i32.eq (local.get $c) (i32.const 69))
          (then
            (call $put32 (i32.const -1))
            (call $record (i32.const 512) (i32.const 8)))
          (else
            (call $put32 (i32.const 1))
            (call $record (local.get $p) (local.get $n))))
$BATCH_TAIL
""")

# For measuring: process gets a u32 count N and a key, and makes N x (state_get of
# the key into a 64-byte buffer, state_put of the key with 8 bytes). process_batch
# does one state_get + state_put of each input that starts with '+' (the input is the
# key), none for others, and echoes every input.
HOST_COST = """
(module
  (import "fs" "state_get" (func $get (param i32 i32 i32 i32 i32)))
  (import "fs" "state_put" (func $put (param i32 i32 i32 i32)))
  (memory (export "memory") 4)
  (global $out (mut i32) (i32.const 0))
  (data (i32.const 256) "12345678")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $n i32) (local $kp i32) (local $kl i32)
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $kp (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $kl (i32.sub (local.get $len) (i32.const 4)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $get (local.get $kp) (local.get $kl) (i32.const 320) (i32.const 64) (i32.const 300))
        (call $put (local.get $kp) (local.get $kl) (i32.const 256) (i32.const 8))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i64.const 0))
  (func $put32 (param $v i32)
    (i32.store (global.get $out) (local.get $v))
    (global.set $out (i32.add (global.get $out) (i32.const 4))))
  (func (export "process_batch") (param $ptr i32) (param $len i32) (result i64)
    (local $count i32) (local $i i32) (local $at i32) (local $n i32) (local $p i32)
    (global.set $out (i32.const 131072))
    (local.set $count (i32.load (local.get $ptr)))
    (local.set $at (i32.add (local.get $ptr) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $n (i32.load (local.get $at)))
        (local.set $p (i32.add (local.get $at) (i32.const 4)))
        (local.set $at (i32.add (local.get $p) (local.get $n)))
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 43))
          (then
            (call $get (local.get $p) (local.get $n) (i32.const 320) (i32.const 64)
                       (i32.const 300))
            (call $put (local.get $p) (local.get $n) (i32.const 256) (i32.const 8))))
        (call $put32 (i32.const 1))
        (call $put32 (local.get $n))
        (memory.copy (global.get $out) (local.get $p) (local.get $n))
        (global.set $out (i32.add (global.get $out) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.or
      (i64.shl (i64.const 131072) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $out) (i32.const 131072))))))
"""

# _initialize reads config "greeting" and logs it at info level (a missing value gives
# length -1, so the log call then has a length past memory and traps).
HOST_INIT = """
(module
  (import "fs" "config_get" (func $config_get (param i32 i32 i32 i32 i32)))
  (import "fs" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "greeting")
  (func (export "_initialize")
    (call $config_get (i32.const 100) (i32.const 8) (i32.const 200) (i32.const 64) (i32.const 196))
    (call $log (i32.const 1) (i32.const 200) (i32.load (i32.const 196))))
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param i32 i32) (result i64) (i64.const 0)))
"""


def _host_module(imports: str) -> str:
    return f"""
(module
  {imports}
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "process") (param i32 i32) (result i64) (i64.const 0)))
"""


# Refused at create: a misspelt import, a known one with the wrong type, a non-function.
HOST_UNKNOWN_IMPORT = _host_module('(import "fs" "state_gett" (func (param i32 i32 i32 i32 i32)))')
HOST_WRONG_SIGNATURE = _host_module(
    '(import "fs" "state_get" (func (param i32 i32 i32 i32) (result i32)))'
)
HOST_NOT_A_FUNCTION = _host_module('(import "fs" "log" (global i32))')

# A WASI command cannot use the host API (it has no long-lived instance).
HOST_IN_COMMAND = """
(module
  (import "fs" "log" (func (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
"""

# A start function that calls the host API: it runs inside instantiation, before the
# host has the instance's memory, so the call traps.
HOST_START = """
(module
  (import "fs" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func $start (call $log (i32.const 1) (i32.const 0) (i32.const 2)))
  (start $start)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param i32 i32) (result i64) (i64.const 0)))
"""
