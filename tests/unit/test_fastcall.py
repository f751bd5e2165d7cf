"""The fast call path must behave exactly like wasmtime-py's public API.

fsworker/fastcall.py uses wasmtime-py private names (see its docstring). When
wasmtime is upgraded and any of this fails: re-check fsworker/fastcall.py
against the new wasmtime-py source before changing the pin in setup.cfg.
"""

import ctypes
import importlib.metadata
import time
from pathlib import Path

import pytest
import wasmtime

from fsworker import fastcall
from fsworker.engine import WASMTIME_VERSION, new_engine
from fsworker.fastcall import I32, I64, FastInvoker, PublicInvoker, invoker
from fsworker.guest import GuestLimits, open_guest
from fsworker.limits import NO_DEADLINE
from fsworker.module_check import ModuleKind, compile_module
from tests.helpers import EXAMPLES

INSTALLED = importlib.metadata.version("wasmtime")


def loud(ok: bool, what: str) -> None:
    if not ok:
        pytest.fail(
            f"{what}. wasmtime-py {INSTALLED} no longer matches what fsworker/fastcall.py "
            f"was written against (wasmtime-py {WASMTIME_VERSION}): re-check "
            f"fsworker/fastcall.py against the new wasmtime-py source before upgrading.",
            pytrace=False,
        )


CASES = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "pack") (param $hi i32) (param $lo i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $hi)) (i64.const 32))
            (i64.extend_i32_u (local.get $lo))))
  (func (export "neg") (param i32) (result i32) (i32.sub (i32.const 0) (local.get 0)))
  (func (export "sum3") (param i32 i32 i32) (result i32)
    (i32.add (local.get 0) (i32.add (local.get 1) (local.get 2))))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "fill") (param $at i32) (param $byte i32) (result i64)
    (i32.store8 (local.get $at) (local.get $byte)) (i64.const 0))
  (func $deep (export "deep") (param i32) (result i32)
    (call $deep (i32.add (local.get 0) (i32.const 1))))
  (func (export "fail") (param $how i32) (result i32)
    (if (i32.eq (local.get $how) (i32.const 0)) (then unreachable))
    (if (i32.eq (local.get $how) (i32.const 1)) (then (drop (i32.load (i32.const 70000)))))
    (if (i32.eq (local.get $how) (i32.const 2))
      (then (drop (i32.div_u (i32.const 1) (i32.const 0)))))
    (if (i32.eq (local.get $how) (i32.const 3)) (then (loop $l (br $l))))
    (if (i32.eq (local.get $how) (i32.const 4)) (then (call $exit (i32.const 7))))
    (i32.const 42)))
"""


def _instance(engine):
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_epoch_deadline(NO_DEADLINE)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = compile_module(engine, wasmtime.wat2wasm(CASES), probe=False)
    exports = linker.instantiate(store, module).exports(store)
    return store, exports


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # comparing whatever was raised
        code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
        exit_code = getattr(exc, "code", None)
        return ("raised", type(exc), code, exit_code, str(exc))


@pytest.fixture(scope="module")
def engine():
    return new_engine()


def test_the_pinned_wasmtime_is_installed():
    loud(INSTALLED == WASMTIME_VERSION, f"wasmtime-py {INSTALLED} is installed, not the pin")


def test_the_private_names_are_there():
    loud(fastcall.FAST_AVAILABLE, f"private names missing ({fastcall._missing})")
    from wasmtime import _bindings, _ffi

    for name in (
        "wasmtime_func_call_unchecked",
        "wasmtime_context_set_epoch_deadline",
        "wasmtime_context_set_fuel",
    ):
        loud(hasattr(_ffi.dll, name), f"libwasmtime lacks {name}")
    loud(
        ctypes.sizeof(_bindings.wasmtime_val_raw_t) == 16
        and [f[0] for f in _bindings.wasmtime_val_raw_t._fields_][:2] == ["i32", "i64"],
        "wasmtime_val_raw_t changed",
    )
    loud(
        [f[0] for f in _bindings.wasmtime_func_t._fields_] == ["store_id", "__private"],
        "wasmtime_func_t changed",
    )
    loud(hasattr(wasmtime.Store, "_context"), "Store._context is gone")
    loud(hasattr(wasmtime.Trap, "_from_ptr"), "Trap._from_ptr is gone")
    loud(hasattr(wasmtime.WasmtimeError, "_from_ptr"), "WasmtimeError._from_ptr is gone")


def test_invoker_picks_the_fast_path(engine, monkeypatch):
    store, exports = _instance(engine)
    assert isinstance(invoker(store, exports["memory"]), FastInvoker)
    assert isinstance(invoker(store, exports["memory"], fast=False), PublicInvoker)
    monkeypatch.setenv("FSWORKER_FASTCALL", "0")
    assert isinstance(invoker(store, exports["memory"]), PublicInvoker)
    monkeypatch.setattr(fastcall, "FAST_AVAILABLE", False)
    monkeypatch.delenv("FSWORKER_FASTCALL")
    assert isinstance(invoker(store, exports["memory"]), PublicInvoker)


def _both(engine):
    """Two instances of CASES, one behind each invoker."""
    out = []
    for cls in (PublicInvoker, FastInvoker):
        store, exports = _instance(engine)
        out.append((store, exports, cls(store, exports["memory"])))
    return out


CALLS = [
    ("pack", 2, I64, [(0, 0), (1, 2), (0xFFFFFFFF, 0xFFFFFFFF), (0x7FFFFFFF, 5), (-1, 3)]),
    ("neg", 1, I32, [(0,), (5,), (-(2**31),), (2**31 - 1,), (0xFFFFFFFF,)]),
    ("sum3", 3, I32, [(1, 2, 3), (2**31 - 1, 1, 0)]),
    ("load", 1, I32, [(0,), (65535,), (65536,), (-1,)]),
    ("fail", 1, I32, [(0,), (1,), (2,), (4,), (9,)]),
    ("deep", 1, I32, [(0,)]),
]


def test_fast_calls_match_the_public_api(engine):
    (_, pe, public), (_, fe, fast) = _both(engine)
    for name, params, result, arg_lists in CALLS:
        pf = public.bind(pe[name], params, result)
        ff = fast.bind(fe[name], params, result)
        for args in arg_lists:
            expected, got = _outcome(pf, *args), _outcome(ff, *args)
            loud(got == expected, f"{name}{args}: fast path gave {got}, public API {expected}")
    exit_outcome = _outcome(fast.bind(fe["fail"], 1, I32), 4)
    loud(exit_outcome[1] is wasmtime.ExitTrap and exit_outcome[3] == 7, "ExitTrap changed")
    # The instance still works after traps.
    loud(_outcome(fast.bind(fe["neg"], 1, I32), 3) == ("ok", -3), "a call after a trap failed")


def test_deadlines_and_fuel_behave_the_same(engine):
    pairs = _both(engine)
    for _, _, inv in pairs:
        inv.set_deadline(1)
    # No ticker runs for this engine: move the epoch by hand.
    engine.increment_epoch()
    engine.increment_epoch()
    outcomes = [_outcome(inv.bind(ex["fail"], 1, I32), 3) for _, ex, inv in pairs]
    loud(outcomes[0] == outcomes[1], f"interrupt: {outcomes}")
    loud(outcomes[1][2] is wasmtime.TrapCode.INTERRUPT, "no INTERRUPT trap")
    for _, _, inv in pairs:
        inv.set_deadline(NO_DEADLINE)
        with pytest.raises(wasmtime.WasmtimeError):
            inv.set_fuel(10)  # this engine does not meter fuel

    outcomes = []
    for _, ex, inv in _both(new_engine(fuel=True)):
        inv.set_fuel(1000)
        outcomes.append(_outcome(inv.bind(ex["fail"], 1, I32), 3))
    loud(outcomes[0] == outcomes[1], f"out of fuel: {outcomes}")
    loud(outcomes[1][2] is wasmtime.TrapCode.OUT_OF_FUEL, "no OUT_OF_FUEL trap")


def test_memory_access_matches_and_is_bounds_checked(engine):
    (_, _, public), (_, _, fast) = _both(engine)
    for inv in (public, fast):
        inv.write(100, b"hello")
        assert inv.read(100, 5) == b"hello"
        inv.write(65531, b"edge!")
        assert inv.read(65531, 5) == b"edge!"
        assert inv.read(7, 0) == b""
        for bad in ((65532, 5), (-1, 2), (70000, 1)):
            with pytest.raises(IndexError):
                inv.read(*bad)
            with pytest.raises(IndexError):
                inv.write(bad[0], b"x" * bad[1])
        assert inv.data_len() == 65536


def test_memory_base_does_not_move_and_grown_memory_is_seen(engine):
    store, exports, fast = _both(engine)[1]
    memory = exports["memory"]
    base = ctypes.addressof(memory.data_ptr(store).contents)
    grow = fast.bind(exports["grow"], 1, I32)
    fill = fast.bind(exports["fill"], 2, I64)
    assert grow(15) == 1  # the guest grows its memory to 16 pages
    memory.grow(store, 16)  # and so does the host, to 32
    loud(
        ctypes.addressof(memory.data_ptr(store).contents) == base,
        "guest memory moved on grow (memory_may_move=False no longer honoured)",
    )
    fill(31 * 65536 + 5, 0xAB)
    assert fast.read(31 * 65536 + 5, 1) == b"\xab"  # past the length seen at bind time
    fast.write(32 * 65536 - 3, b"end")
    assert memory.read(store, 32 * 65536 - 3) == bytearray(b"end")
    assert fast.data_len() == 32 * 65536


def test_binding_checks_the_type_once(engine):
    for _, exports, inv in _both(engine):
        with pytest.raises(TypeError, match="expected"):
            inv.bind(exports["pack"], 1, I64)
        with pytest.raises(TypeError, match="expected"):
            inv.bind(exports["neg"], 1, I64)


def test_per_message_cost_public_fast_and_batched(tmp_path):
    """Prints the per-message cost of each path on examples/basic (see docs/abi.md).

    Run with ``pytest -s tests/unit/test_fastcall.py -k cost`` to see the numbers.
    """
    engine = new_engine()
    module = compile_module(engine, (EXAMPLES / "basic" / "c" / "basic.wasm").read_bytes())
    messages = [b'{"name":"rbt%d","money":%d}' % (i, i) for i in range(100)]
    limits = GuestLimits(timeout_ms=5000, memory_limit=256 << 20)

    def cost(batch: bool, fast: bool, rounds: int) -> float:
        guest = open_guest(
            engine, module, ModuleKind.ABI, Path(tmp_path), limits, batch=batch, fast=fast
        )
        # 100 messages per call_batch, as the processing loop does; batch=False
        # makes that 100 process() calls.
        inputs = messages
        guest.call_batch(inputs)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(rounds):
                guest.call_batch(inputs)
            best = min(best, (time.perf_counter() - start) / (rounds * len(inputs)))
        return best * 1e6

    public = cost(batch=False, fast=False, rounds=1)
    fast = cost(batch=False, fast=True, rounds=10)
    batched = cost(batch=True, fast=True, rounds=20)
    print(
        f"\nexample_basic per message: public {public:.1f} us, fast {fast:.2f} us, "
        f"fast + process_batch x100 {batched:.2f} us"
    )
    loud(fast < public / 3, f"the fast path ({fast:.1f} us) is not much faster than {public:.1f}")
    assert batched < fast
