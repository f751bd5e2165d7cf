import time

import pytest
import wasmtime

from fsworker import limits, wasm_decode
from fsworker.engine import _SETTINGS, new_engine
from fsworker.limits import (
    NO_DEADLINE,
    TICK_MS,
    WASM_PAGE,
    deadline_ticks,
    find_probe,
    fmt_bytes,
    memory_limit_hit,
    ticker,
)
from fsworker.memory_probe import PROBE_EXPORT, ProbeUnsupported, add_memory_probe
from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES


@pytest.fixture(scope="module")
def engine():
    return new_engine()


def _instance(engine, wasm, limit=None, imports=()):
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(NO_DEADLINE)
    if limit is not None:
        store.set_limits(memory_size=limit)
    module = wasmtime.Module(engine, wasm)
    instance = wasmtime.Instance(store, module, list(imports))
    return store, instance.exports(store)


# --- time ------------------------------------------------------------------------


def test_deadline_ticks():
    assert deadline_ticks(None) == NO_DEADLINE
    assert deadline_ticks(50) == 50 // TICK_MS + 1
    assert deadline_ticks(1) == 2  # never less than the time asked for
    assert deadline_ticks(30, count=10) == 300 // TICK_MS + 1
    assert deadline_ticks(7) == 3  # rounds up to whole ticks
    assert deadline_ticks(30, count=0) == deadline_ticks(30)


def test_epoch_interruption_is_always_on():
    assert _SETTINGS["epoch_interruption"] is True


def test_the_ticker_advances_every_guest_engine(engine):
    ticker.add(engine)
    assert ticker.running
    store, exports = _instance(engine, fx.wasm(fx.STDIO_LOOP))
    store.set_epoch_deadline(10)
    start = time.monotonic()
    ticker.enter()
    try:
        with pytest.raises(wasmtime.Trap) as info:
            exports["_start"](store)
    finally:
        ticker.leave()
    elapsed = time.monotonic() - start
    assert info.value.trap_code is wasmtime.TrapCode.INTERRUPT
    assert 9 * TICK_MS / 1000 <= elapsed < 0.5


def test_the_ticker_sleeps_when_no_guest_runs(engine, monkeypatch):
    monkeypatch.setattr(limits, "IDLE_S", 0.02)
    ticker.add(engine)
    ticker.enter()
    ticker.leave()
    deadline = time.monotonic() + 5
    while not ticker.sleeping and time.monotonic() < deadline:
        time.sleep(0.005)
    assert ticker.sleeping
    ticks = ticker.ticks
    time.sleep(0.05)
    assert ticker.ticks == ticks  # asleep: no ticks
    ticker.enter()
    try:
        deadline = time.monotonic() + 5
        while ticker.ticks < ticks + 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ticker.ticks >= ticks + 3 and not ticker.sleeping
    finally:
        ticker.leave()


# --- memory: helpers ---------------------------------------------------------------


def test_fmt_bytes():
    assert fmt_bytes(16 << 20) == "16 MiB"
    assert fmt_bytes(3 << 19) == "1.5 MiB"
    assert fmt_bytes(64 << 10) == "64 KiB"
    assert fmt_bytes(4 << 30) == "4 GiB"
    assert fmt_bytes(100) == "100 bytes"


def test_memory_limit_hit_without_a_probe_is_memory_at_the_limit():
    limit = 16 * WASM_PAGE
    assert memory_limit_hit(None, None, limit) is None
    assert memory_limit_hit(limit, None, limit) == limit
    assert memory_limit_hit(limit, None, limit - WASM_PAGE + 1) == limit - WASM_PAGE + 1
    assert memory_limit_hit(limit, None, limit - WASM_PAGE) is None
    assert memory_limit_hit(limit, None, None) is None


# --- memory: the module rewrite ------------------------------------------------------

GROWER = """
(module
  (memory (export "memory") 1)
  (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))
  (func (export "size") (result i32) (memory.size)))
"""


def test_probe_records_a_refused_grow_and_nothing_else(engine):
    probed = add_memory_probe(fx.wasm(GROWER))
    assert probed is not None
    store, exports = _instance(engine, probed, limit=4 * WASM_PAGE)
    probe = find_probe(store, exports)
    assert probe is not None and probe.refused_bytes() == 0
    assert exports["grow"](store, 2) == 1  # granted: the result of memory.grow is unchanged
    assert probe.refused_bytes() == 0
    assert exports["grow"](store, 5) == -1  # 3 + 5 pages > 4: refused
    assert probe.refused_bytes() == 8 * WASM_PAGE
    assert exports["size"](store) == 3
    probe.reset()
    assert probe.refused_bytes() == 0
    assert memory_limit_hit(4 * WASM_PAGE, probe, 3 * WASM_PAGE) is None
    exports["grow"](store, 2)
    assert memory_limit_hit(4 * WASM_PAGE, probe, 3 * WASM_PAGE) == 5 * WASM_PAGE


def test_modules_that_never_grow_memory_are_left_alone():
    assert add_memory_probe(fx.wasm(fx.ECHO)) is None
    assert add_memory_probe(fx.wasm('(module (func (export "f")))')) is None
    assert add_memory_probe(fx.wasm(fx.NO_EXPORTS)) is None


# i32.const -64 is encoded 41 40, and a block without result 02 40: both followed by
# unreachable (00) look like memory.grow (40 00) to a byte search, not to the decoder.
LOOKALIKES = """
(module
  (memory 1)
  (func (export "f") (param $x i32) (result i32)
    (if (i32.eq (local.get $x) (i32.const 1)) (then (i32.const -64) (unreachable)))
    (if (i32.eq (local.get $x) (i32.const 2)) (then (block (unreachable))))
    (if (i32.eq (local.get $x) (i32.const 3)) (then (return (i32.const -64))))
    (memory.grow (i32.const 1))))
"""


def test_lookalike_bytes_are_not_rewritten(engine):
    original = fx.wasm(LOOKALIKES)
    probed = add_memory_probe(original)
    assert probed is not None and len(probed) > len(original)
    for wasm in (original, probed):
        store, exports = _instance(engine, wasm)
        f = exports["f"]
        for x in (1, 2):
            with pytest.raises(wasmtime.Trap) as info:
                f(store, x)
            assert info.value.trap_code is wasmtime.TrapCode.UNREACHABLE
        assert f(store, 3) == -64
        assert f(store, 0) == 1 and f(store, 0) == 2


# Many kinds of instructions and immediates, so the decoder walks all of them.
EVERYTHING = """
(module
  (type $ii (func (param i32) (result i32)))
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (memory 1)
  (table $t 2 funcref)
  (elem (table $t) (i32.const 0) func $inc $twice)
  (data $d "\\01\\02\\03\\04")
  (global $g (mut i64) (i64.const -5))
  (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $forget (data.drop $d))
  (func (export "f") (param $x i32) (result i32)
    (local $v v128) (local $f f64) (local $r funcref)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (local.set $v
      (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
    (v128.store offset=16 (i32.const 0) (local.get $v))
    (local.set $v (v128.load32_lane 1 (i32.const 16) (local.get $v)))
    (local.set $v (i32x4.replace_lane 2 (local.get $v) (i32.const 7)))
    (local.set $f (f64.add (f64.const 1.5) (f64.promote_f32 (f32.const 2.25))))
    (memory.fill (i32.const 100) (i32.const 9) (i32.const 4))
    (memory.copy (i32.const 200) (i32.const 100) (i32.const 4))
    (memory.init $d (i32.const 300) (i32.const 0) (i32.const 4))
    (global.set $g (i64.add (global.get $g) (i64.const 0x123456789)))
    (local.set $r (ref.func $inc))
    (drop (ref.is_null (local.get $r)))
    (drop (table.size $t))
    (drop (i32.trunc_sat_f64_s (local.get $f)))
    (drop (i32.extend8_s (i32.const 255)))
    (drop (select (result i32) (i32.const 1) (i32.const 2) (local.get $x)))
    (drop (memory.grow (i32.const 1)))
    (block $a (block $b (block $c
      (br_table $a $b $c (local.get $x)))
      (return (i32.add (i32x4.extract_lane 2 (local.get $v))
                       (i32.load8_u offset=0 align=1 (i32.const 302)))))
      (return (call_indirect (type $ii) (local.get $x) (i32.const 1))))
    (i32.add (i32.load (i32.const 200)) (call $twice (local.get $x)))))
"""


def test_the_decoder_handles_many_instruction_kinds(engine):
    original = fx.wasm(EVERYTHING)
    probed = add_memory_probe(original)
    assert probed is not None
    results = []
    for wasm in (original, probed):
        store = wasmtime.Store(engine)
        store.set_epoch_deadline(NO_DEADLINE)
        twice = wasmtime.Func(
            store,
            wasmtime.FuncType([wasmtime.ValType.i32()], [wasmtime.ValType.i32()]),
            lambda x: 2 * x,
        )
        exports = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [twice]).exports(store)
        results.append([exports["f"](store, x) for x in (0, 1, 2, 5)])
        if wasm is probed:
            assert find_probe(store, exports) is not None
    assert results[0] == results[1]


@pytest.mark.parametrize(
    "path",
    [EXAMPLES / "basic" / "c" / "basic.wasm", EXAMPLES / "basic" / "c" / "basic_stdio.wasm"],
)
def test_every_function_of_the_examples_decodes(path):
    wasm = path.read_bytes()
    reader = wasm_decode.Reader(wasm, 8)
    code = None
    while reader.pos < len(wasm):
        sid, size = reader.byte(), reader.uleb()
        if sid == 10:
            code = wasm[reader.pos : reader.pos + size]
        reader.skip(size)
    count, bodies = wasm_decode.split_vec(code)
    r = wasm_decode.Reader(bodies)
    rewritten = 0
    for _ in range(count):
        size = r.uleb()
        body = bodies[r.pos : r.pos + size]
        r.skip(size)
        if wasm_decode.rewrite_body(body, 12345) is not None:  # decodes every instruction
            rewritten += 1
    assert rewritten >= 1  # sbrk's memory.grow


def test_imported_memory_and_missing_sections(engine):
    wat = """
    (module
      (import "env" "mem" (memory 1))
      (func (param i32) (result i32) (memory.grow (local.get 0))))
    """
    probed = add_memory_probe(fx.wasm(wat))
    assert probed is not None
    module = wasmtime.Module(engine, probed)
    assert [e.name for e in module.exports] == [PROBE_EXPORT]
    store = wasmtime.Store(engine)
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 2)))
    exports = wasmtime.Instance(store, module, [memory]).exports(store)
    assert find_probe(store, exports) is not None


@pytest.mark.parametrize(
    ("wat", "reason"),
    [
        (
            "(module (memory 1) (func (drop (memory.grow (i32.const 1))))"
            ' (memory (export "__fs_memory_probe") 1))',
            "already exports",
        ),
        ("(module (memory i64 1) (func (drop (memory.grow (i64.const 1)))))", "64-bit"),
        ("(module (memory 1 2 shared) (func (drop (memory.grow (i32.const 1)))))", "shared"),
        ("(module (type (struct)) (memory 1) (func (drop (memory.grow (i32.const 1)))))", "GC"),
    ],
)
def test_what_the_rewrite_does_not_handle(wat, reason):
    with pytest.raises(ProbeUnsupported, match=reason):
        add_memory_probe(fx.wasm(wat))


def test_a_component_or_garbage_is_not_rewritten():
    with pytest.raises(ProbeUnsupported):
        add_memory_probe(b"\0asm\x0d\0\x01\0")
    with pytest.raises(ProbeUnsupported):
        add_memory_probe(b"\0asm\x01\0\0\0\x0a\x05\x01")
