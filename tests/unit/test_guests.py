import hashlib
import time

import pytest

from fsworker import batch_frame, module_cache
from fsworker.batch_frame import MAX_BATCH_RECORDS
from fsworker.engine import engine_fuel, new_engine
from fsworker.guest import (
    KINDS,
    NO_LIMITS,
    GuestError,
    GuestInitError,
    GuestLimits,
    open_guest,
    trap_message,
)
from fsworker.guest_abi import AbiGuest
from fsworker.module_check import ModuleKind, classify, compile_module
from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES

PERSON_IN = b'{"name":"rbt","money":2}'
PERSON_OUT = b'{"name":"rbt","money":3,"expected":0}'
BASIC = EXAMPLES / "basic" / "c" / "basic.wasm"
MiB = 1 << 20


@pytest.fixture(scope="module")
def engine():
    return new_engine()


@pytest.fixture(scope="module")
def fuel_engine():
    return new_engine(fuel=True)


def _guest(engine, path, tmp_path, limits=NO_LIMITS, **kw):
    fuel = bool(engine_fuel(engine))
    module = module_cache.load(engine, path, tmp_path / "cache", fuel=fuel)
    return open_guest(engine, module, classify(module), tmp_path / "scratch", limits, **kw)


def _wat_guest(engine, tmp_path, wat, limits=NO_LIMITS, **kw):
    return _guest(engine, fx.write(tmp_path, "fixture", wat), tmp_path, limits, **kw)


def _error(guest, data) -> GuestError:
    with pytest.raises(GuestError) as info:
        guest.call(data)
    assert "\n" not in str(info.value)
    return info.value


# --- the example and the basics ------------------------------------------------


def test_abi_example(engine, tmp_path):
    guest = _guest(engine, BASIC, tmp_path)
    assert guest.batched and guest.call_mode == "fast"
    assert guest.call(PERSON_IN) == [PERSON_OUT]
    assert guest.call(b'{"name":"a","money":-5,"expected":7}') == [
        b'{"name":"a","money":-4,"expected":7}'
    ]
    error = _error(guest, b"not json")
    assert error.kind == "error" and "malformed input" in str(error)
    assert guest.call(PERSON_IN) == [PERSON_OUT]


EXAMPLE_INPUTS = [
    PERSON_IN,
    b'{"name":"a","money":-5,"expected":7}',
    b"not json",
    b"",
    b'{ "money" : 41 , "name" : "x\\"y", "extra": [1, {"z": null}] }',
    b'{"name":"big","money":9223372036854775807}',
    b'{"name":"n","money":1,"expected":null}',
    b"{}",
    b'{"name":"' + b"q" * 5000 + b'","money":0}',
] * 40


@pytest.mark.parametrize("fast", [True, False])
def test_example_batch_and_per_message_results_are_identical(engine, tmp_path, fast):
    batched = _guest(engine, BASIC, tmp_path, fast=fast)
    single = _guest(engine, BASIC, tmp_path, batch=False, fast=fast)
    assert batched.batched and not single.batched
    via_batch = batched.call_batch(EXAMPLE_INPUTS)
    via_process = single.call_batch(EXAMPLE_INPUTS)
    via_call = []
    for data in EXAMPLE_INPUTS:
        try:
            via_call.append(single.call(data))
        except GuestError as exc:
            via_call.append(exc)
    assert len(via_batch) == len(via_process) == len(EXAMPLE_INPUTS)
    assert via_call == via_process
    for a, b in zip(via_batch, via_process, strict=True):
        if isinstance(b, GuestError):
            assert isinstance(a, GuestError) and a.kind == b.kind == "error"
        else:
            assert a == b and len(a) == 1
    assert via_batch[0] == [PERSON_OUT]
    assert batched.instances == single.instances == 1  # no failure needed a rebuild


def test_stdio_example(engine, tmp_path):
    guest = _guest(engine, EXAMPLES / "basic" / "c" / "basic_stdio.wasm", tmp_path)
    assert guest.call(PERSON_IN) == [PERSON_OUT]
    error = _error(guest, b"{}")
    assert (error.kind, str(error)) == ("exit", "WASI command exited with code 1")
    assert guest.call(PERSON_IN) == [PERSON_OUT]
    assert guest.call_batch([PERSON_IN, b"{}"]) == [[PERSON_OUT], error]


def test_trap_rebuilds_the_instance(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.ECHO)
    assert guest.call(b"hello") == [b"hello"]
    error = _error(guest, b"X marks a trap")
    assert error.kind == "trap"
    assert str(error).startswith("wasm trap: wasm `unreachable` instruction executed")
    assert guest.instances == 2
    assert guest.call(b"still alive") == [b"still alive"]
    assert guest.call(b"") == []  # zero-length output: no record


def test_trap_in_initialize_is_an_init_error(engine, tmp_path):
    path = fx.write(tmp_path, "trapinit", fx.TRAP_IN_INITIALIZE)
    module = module_cache.load(engine, path, None)
    with pytest.raises(GuestInitError, match="failed to initialise"):
        open_guest(engine, module, ModuleKind.ABI, tmp_path)


def test_compiled_cache_is_used_and_survives_corruption(engine, tmp_path):
    cache = tmp_path / "cache"
    module_cache.load(engine, BASIC, cache)
    artifact = module_cache.artifact_path(cache, hashlib.sha256(BASIC.read_bytes()).hexdigest())
    assert artifact.exists()
    artifact.write_bytes(b"garbage")
    module = module_cache.load(engine, BASIC, cache)  # falls back to compiling
    assert classify(module) is ModuleKind.ABI
    assert artifact.read_bytes() != b"garbage"


def test_fuel_artifacts_are_cached_apart(engine, fuel_engine, tmp_path):
    cache = tmp_path / "cache"
    sha = hashlib.sha256(BASIC.read_bytes()).hexdigest()
    module_cache.load(engine, BASIC, cache)
    module_cache.load(fuel_engine, BASIC, cache, fuel=True)
    plain = module_cache.artifact_path(cache, sha)
    fueled = module_cache.artifact_path(cache, sha, fuel=True)
    assert plain.exists() and fueled.exists() and plain.parent != fueled.parent
    with pytest.raises(ValueError, match="fuel"):
        module_cache.load(engine, BASIC, cache, fuel=True)
    with pytest.raises(ValueError, match="fuel"):
        module_cache.precompile(fuel_engine, BASIC.read_bytes(), cache)


# --- every GuestError kind ---------------------------------------------------------


def test_timeout(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.LOOP_ON_L, GuestLimits(timeout_ms=50))
    assert guest.call(b"fine") == [b"fine"]
    start = time.monotonic()
    error = _error(guest, b"Loop forever")
    elapsed = time.monotonic() - start
    assert (error.kind, str(error)) == ("timeout", "wasm function exceeded its time limit of 50 ms")
    assert 0.045 <= elapsed < 1.0
    assert guest.call(b"fine again") == [b"fine again"]
    assert guest.instances == 2


def test_no_timeout_means_no_deadline(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.FUEL_BURNER)
    assert guest.call(b"F burns a while but finishes") == [b"F burns a while but finishes"]


@pytest.mark.parametrize("payload", [b"M", b"W"])
def test_memory_limit_growing_until_refused(engine, tmp_path, payload):
    guest = _wat_guest(engine, tmp_path, fx.MEMORY_HOG, GuestLimits(memory_limit=2 * MiB))
    assert guest.call(b"ok") == [b"ok"]
    error = _error(guest, payload)
    assert error.kind == "memory-limit"
    assert str(error).startswith("wasm function hit its memory limit of 2 MiB (")
    assert "memory.grow to 2.1 MiB refused" in str(error)
    assert guest.call(b"ok") == [b"ok"]
    assert guest.instances == 2


def test_memory_limit_one_big_grow_far_below_the_limit(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.MEMORY_HOG, GuestLimits(memory_limit=16 * MiB))
    error = _error(guest, b"B")
    assert error.kind == "memory-limit"
    assert str(error) == (
        "wasm function hit its memory limit of 16 MiB "
        "(memory.grow to 64.1 MiB refused; then process() returned error code -1)"
    )
    assert guest.instances == 2  # stuck at its limit: rebuilt


def test_a_survived_refusal_does_not_taint_later_failures(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.MEMORY_HOG, GuestLimits(memory_limit=16 * MiB))
    assert guest.call(b"S") == [b"S"]
    assert _error(guest, b"E").kind == "error"
    assert _error(guest, b"X").kind == "trap"


def test_memory_limit_without_the_probe_uses_the_memory_size(engine, tmp_path):
    module = compile_module(engine, fx.wasm(fx.MEMORY_HOG), probe=False)
    assert "__fs_memory_probe" not in [e.name for e in module.exports]
    guest = open_guest(engine, module, ModuleKind.ABI, tmp_path, GuestLimits(memory_limit=MiB))
    error = _error(guest, b"M")
    assert error.kind == "memory-limit" and "(memory at 1 MiB; then wasm trap:" in str(error)
    # The documented limit of the fallback: a refused grow far below the limit is not seen.
    assert _error(guest, b"B").kind == "error"


def test_no_memory_limit(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.MEMORY_HOG)
    assert guest.call(b"B") == [b"B"]  # the 64 MiB grow is granted
    assert _error(guest, b"E").kind == "error"


def test_fuel(fuel_engine, tmp_path):
    guest = _wat_guest(fuel_engine, tmp_path, fx.FUEL_BURNER, GuestLimits(fuel=100_000))
    for _ in range(3):  # fuel is per message, not per instance
        assert guest.call(b"cheap") == [b"cheap"]
    error = _error(guest, b"F")
    assert (error.kind, str(error)) == (
        "fuel",
        "wasm function ran out of fuel (limit 100000 per message)",
    )
    assert guest.call(b"cheap") == [b"cheap"]
    assert guest.instances == 2


def test_fuel_engine_without_a_fuel_limit_runs_unmetered(fuel_engine, tmp_path):
    guest = _wat_guest(fuel_engine, tmp_path, fx.FUEL_BURNER)
    assert guest.call(b"F") == [b"F"]


def test_fuel_limit_needs_a_fuel_engine(engine, tmp_path):
    module = compile_module(engine, fx.wasm(fx.ECHO))
    with pytest.raises(ValueError, match="new_engine\\(fuel=True\\)"):
        open_guest(engine, module, ModuleKind.ABI, tmp_path, GuestLimits(fuel=10))


def test_error_and_abi(engine, tmp_path):
    echo = _wat_guest(engine, tmp_path, fx.ECHO)
    error = _error(echo, b"E")
    assert (error.kind, str(error)) == ("error", "process() returned error code -1")
    assert echo.instances == 1  # an error result keeps the instance
    bad = _wat_guest(engine, tmp_path, fx.BAD_OUTPUT)
    error = _error(bad, b"O")
    assert (error.kind, str(error)) == (
        "abi",
        "process() returned output [65000, +1000) outside memory of 65536 bytes",
    )
    error = _error(bad, b"x" * 200)
    assert (error.kind, str(error)) == (
        "abi",
        "alloc(200) returned [70000, +200) outside memory of 65536 bytes",
    )
    assert bad.call(b"fine") == [b"fine"]


def test_all_kinds_are_known():
    assert set(KINDS) == {"trap", "timeout", "memory-limit", "fuel", "error", "abi", "exit"}


def test_limits_are_validated():
    with pytest.raises(ValueError, match="timeout_ms"):
        GuestLimits(timeout_ms=0)
    with pytest.raises(ValueError, match="memory_limit"):
        GuestLimits(memory_limit=-1)


def test_initial_memory_above_the_limit_is_an_init_error(engine, tmp_path):
    module = compile_module(engine, fx.wasm(fx.BATCH_ECHO))  # 4 pages = 256 KiB
    with pytest.raises(GuestInitError, match=r"needs 256 KiB of memory at start.*128 KiB"):
        open_guest(engine, module, ModuleKind.ABI, tmp_path, GuestLimits(memory_limit=128 << 10))


def test_trap_message_is_one_line_with_cause_and_frame(engine):
    import wasmtime

    module = compile_module(
        engine,
        fx.wasm('(module (func (export "f") (drop (i32.load (i32.const 99999)))) (memory 1))'),
    )
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 40)
    func = wasmtime.Instance(store, module, []).exports(store)["f"]
    with pytest.raises(wasmtime.Trap) as info:
        func(store)
    assert trap_message(info.value) == (
        "out of bounds memory access (memory fault at wasm address 0x1869f in linear "
        "memory of size 0x10000) in <wasm function 0>"
    )


# --- the stdio lane honours the same limits ------------------------------------------


def test_stdio_limits(engine, fuel_engine, tmp_path):
    loop = _wat_guest(engine, tmp_path, fx.STDIO_LOOP, GuestLimits(timeout_ms=30))
    assert _error(loop, b"").kind == "timeout"
    hog = _wat_guest(engine, tmp_path, fx.STDIO_HOG, GuestLimits(memory_limit=MiB))
    error = _error(hog, b"")
    assert error.kind == "memory-limit" and "memory.grow to 1.1 MiB refused" in str(error)
    burner = _wat_guest(fuel_engine, tmp_path, fx.STDIO_LOOP, GuestLimits(fuel=10_000))
    assert _error(burner, b"").kind == "fuel"
    exits = _wat_guest(engine, tmp_path, fx.STDIO_EXIT)
    assert str(_error(exits, b"")) == "WASI command exited with code 3"


# --- batches ---------------------------------------------------------------------------


def test_batch_returns_zero_one_or_many_records_per_input(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_ECHO)
    assert guest.batched
    outcomes = guest.call_batch([b"Zero", b"one", b"Three", b"", b"also one"])
    assert outcomes == [[], [b"one"], [b"Three"] * 3, [b""], [b"also one"]]
    assert guest.call(b"Three") == [b"Three"] * 3  # call() goes through process_batch too


def test_batch_input_failure_is_that_input_only(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_ECHO)
    outcomes = guest.call_batch([b"a", b"Error here", b"b"])
    assert outcomes[0] == [b"a"] and outcomes[2] == [b"b"]
    assert outcomes[1] == GuestError(
        "error", "process_batch() rejected the input (-1): rejected: starts with E"
    )
    assert guest.instances == 1


@pytest.mark.parametrize(
    ("poison", "kind", "limits"),
    [(b"X-trap", "trap", GuestLimits()), (b"Loop", "timeout", GuestLimits(timeout_ms=40))],
)
def test_batch_falls_back_per_message_to_isolate_a_poison_message(
    engine, tmp_path, poison, kind, limits
):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_ECHO, limits)
    inputs = [b"a", b"Three", poison, b"Zero", b"b"]
    outcomes = guest.call_batch(inputs)
    assert outcomes[:2] == [[b"a"], [b"Three"] * 3]
    assert isinstance(outcomes[2], GuestError) and outcomes[2].kind == kind
    assert outcomes[3:] == [[], [b"b"]]
    # One rebuild after the whole call failed, one after the poison message alone.
    assert guest.instances == 3
    assert guest.call_batch([b"c"]) == [[b"c"]]


def test_batch_timeout_scales_with_the_number_of_records(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_ECHO, GuestLimits(timeout_ms=30))
    start = time.monotonic()
    outcomes = guest.call_batch([b"x"] * 9 + [b"Loop"])
    elapsed = time.monotonic() - start
    # The whole call gets 10 x 30 ms, then the loop alone gets 30 ms.
    assert 0.33 <= elapsed < 2.0
    assert outcomes[:9] == [[b"x"]] * 9 and outcomes[9].kind == "timeout"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (b"C", "input 0 claims 5 records, more than 5 bytes hold"),
        (b"R", "a record of input 0 claims 2147483647 bytes, only 0 remain"),
        (b"T", "4 bytes left after the last result"),
        (b"N", "error text length of input 0 runs past the end"),
        (b"S", "it ends (0 bytes) before the result of input 0 of 1"),
    ],
)
def test_batch_garbage_framing_is_an_abi_error(engine, tmp_path, first, reason):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_GARBAGE)
    (outcome,) = guest.call_batch([first])
    assert outcome == GuestError("abi", f"process_batch() returned malformed output: {reason}")
    assert guest.instances == 1


def test_batch_garbage_fails_every_input_of_the_call(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_GARBAGE)
    outcomes = guest.call_batch([b"C", b"fine", b"fine"])
    assert [o.kind for o in outcomes] == ["abi"] * 3


def test_batch_output_outside_memory(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_GARBAGE)
    (outcome,) = guest.call_batch([b"O"])
    assert outcome == GuestError(
        "abi", "process_batch() returned output [65000, +1000) outside memory of 65536 bytes"
    )


def test_batches_are_chunked(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.BATCH_ECHO)
    assert isinstance(guest, AbiGuest)
    inputs = [b"%d" % i for i in range(2 * MAX_BATCH_RECORDS + 88)]
    sizes = [end - start for start, end in batch_frame.chunks(inputs, guest._batch_bytes)]
    assert sizes == [MAX_BATCH_RECORDS, MAX_BATCH_RECORDS, 88]
    assert guest.call_batch(inputs) == [[d] for d in inputs]
    assert guest.call_batch([]) == []
    # A memory limit caps the bytes per call (1/8 of the limit, at least 64 KiB).
    capped = _wat_guest(engine, tmp_path, fx.BATCH_ECHO, GuestLimits(memory_limit=MiB))
    big = [b"y" * 30_000] * 10
    assert capped._batch_bytes == 128 << 10
    assert [e - s for s, e in batch_frame.chunks(big, capped._batch_bytes)] == [4, 4, 2]
    assert capped.call_batch(big) == [[d] for d in big]


def test_memory_limit_in_a_batch_is_that_message_only(engine, tmp_path):
    guest = _wat_guest(engine, tmp_path, fx.MEMORY_HOG, GuestLimits(memory_limit=2 * MiB))
    outcomes = guest.call_batch([b"a", b"M", b"b"])
    assert outcomes[0] == [b"a"] and outcomes[2] == [b"b"]
    assert outcomes[1].kind == "memory-limit"


def test_guest_errors_compare_by_kind_and_message():
    assert GuestError("trap", "x") == GuestError("trap", "x")
    assert GuestError("trap", "x") != GuestError("error", "x")
    assert repr(GuestError("abi", "y")) == "GuestError('abi', 'y')"
