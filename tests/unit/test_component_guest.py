"""Lane 3, components (fsworker/guest_component.py, docs/abi.md): no broker.

The committed Python and JavaScript ``basic.wasm`` run through ``open_guest``
with the conformance vectors; a small component written in WAT covers traps,
limits, ``err`` results and state. Compiling an 18 MB component takes seconds,
so the compiled artifacts are cached in the temp directory across runs (keyed
by wasm hash and engine, like fsd's cache).
"""

import tempfile
import time
from pathlib import Path

import pytest
import wasmtime
from wasmtime import component as wc

from fsworker import guest_component, module_cache
from fsworker.engine import new_engine
from fsworker.guest import (
    ERROR,
    FUEL,
    MEMORY_LIMIT,
    TIMEOUT,
    TRAP,
    GuestError,
    GuestLimits,
    open_guest,
)
from fsworker.guest_component import ComponentGuest
from fsworker.guest_component_host import BATCH_INTERFACE
from fsworker.host_context import HostContext, MessageMeta
from fsworker.module_check import (
    InvalidModule,
    ModuleKind,
    classify,
    compile_module,
    is_component,
)
from fsworker.state_store import SqliteStateStore
from tests.conformance.vectors import BASIC
from tests.helpers import EXAMPLES

CACHE = Path(tempfile.gettempdir()) / "fs-test-compiled"
LANGS = ["python", "js"]

# The conformance vectors (every language), plus a few inputs only these parsers see.
VECTORS = [(given, want) for given, want in BASIC if want is not None]
FAILURES = [given for given, want in BASIC if want is None] + [
    b'{"name":"x","money":1.0}',
    b'{"name":"x","money":true}',
    b"",
]

# A component in WAT exporting the lane-3 `process` and importing host.state-add.
# By the input's first byte: "l" loops, "t" traps, "m" grows memory until refused
# and then returns err "out of memory" (like a language runtime), "e" returns err
# "bad input", "a" calls state-add("count", 1), "p" does that and then traps,
# "n" returns no record; anything else returns the input as its one record.
WAT = r"""
(component
  (import "function-stream:function/host@1.0.0" (instance $host
    (export "state-add" (func (param "key" string) (param "delta" s64) (result s64)))
  ))
  (core module $mem (memory (export "memory") 1))
  (core instance $memi (instantiate $mem))
  (alias core export $memi "memory" (core memory $memory))
  (core func $state_add (canon lower (func $host "state-add") (memory $memory)))
  (core module $m
    (import "env" "memory" (memory 1))
    (import "host" "state-add" (func $state_add (param i32 i32 i64) (result i64)))
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (block $ok
        (br_if $ok (i32.le_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.add (i32.sub (i32.shr_u (global.get $bump)
                (i32.const 16)) (memory.size)) (i32.const 1))) (i32.const -1))
          (then unreachable)))
      (local.get $p))
    (func (export "process") (param $ptr i32) (param $len i32) (result i32)
      (local $c i32)
      (if (local.get $len) (then (local.set $c (i32.load8_u (local.get $ptr)))))
      (if (i32.eq (local.get $c) (i32.const 108)) (then (loop $l (br $l))))
      (if (i32.eq (local.get $c) (i32.const 116)) (then unreachable))
      (if (i32.eq (local.get $c) (i32.const 109)) (then
        (loop $g (br_if $g (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        (i32.store8 (i32.const 0) (i32.const 1))
        (i32.store (i32.const 4) (i32.const 64))
        (i32.store (i32.const 8) (i32.const 13))
        (return (i32.const 0))))
      (if (i32.or (i32.eq (local.get $c) (i32.const 97)) (i32.eq (local.get $c) (i32.const 112)))
        (then
          (drop (call $state_add (i32.const 48) (i32.const 5) (i64.const 1)))
          (if (i32.eq (local.get $c) (i32.const 112)) (then unreachable))))
      (if (i32.eq (local.get $c) (i32.const 101)) (then
        (i32.store8 (i32.const 0) (i32.const 1))
        (i32.store (i32.const 4) (i32.const 32))
        (i32.store (i32.const 8) (i32.const 9))
        (return (i32.const 0))))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (i32.const 16))
      (i32.store (i32.const 8) (i32.ne (local.get $c) (i32.const 110)))
      (i32.store (i32.const 16) (local.get $ptr))
      (i32.store (i32.const 20) (local.get $len))
      (i32.const 0))
    (func (export "post") (param i32) (global.set $bump (i32.const 1024)))
    (data (i32.const 32) "bad input")
    (data (i32.const 48) "count")
    (data (i32.const 64) "out of memory")
  )
  (core instance $i (instantiate $m
    (with "env" (instance (export "memory" (memory $memory))))
    (with "host" (instance (export "state-add" (func $state_add))))
  ))
  (func (export "process") (param "input" (list u8))
    (result (result (list (list u8)) (error string)))
    (canon lift (core func $i "process") (memory $memory) (realloc (core func $i "realloc"))
      (post-return (core func $i "post"))))
)
"""


def _component(process_type: str, core: str, options: str = "", imports: str = "") -> bytes:
    """A component exporting ``process`` of another type (it traps if called)."""
    return wasmtime.wat2wasm(
        f"""(component {imports}
          (core module $m (memory (export "memory") 1)
            (func (export "f") {core} unreachable)
            (func (export "r") (param i32 i32 i32 i32) (result i32) unreachable))
          (core instance $i (instantiate $m))
          (func (export "process") {process_type}
            (canon lift (core func $i "f") {options})))"""
    )


@pytest.fixture(scope="module")
def engine():
    return new_engine()


@pytest.fixture(scope="module")
def basics(engine):
    """The compiled basic.wasm of each language (through the artifact cache)."""
    return {
        lang: module_cache.load(engine, EXAMPLES / "basic" / lang / "basic.wasm", CACHE)
        for lang in LANGS
    }


@pytest.fixture(scope="module")
def wat_component(engine):
    return compile_module(engine, wasmtime.wat2wasm(WAT))


@pytest.fixture
def store(tmp_path):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    yield store
    store.close()


def _open(engine, component, tmp_path, limits=None, **kw):
    limits = limits if limits is not None else GuestLimits()
    guest = open_guest(engine, component, classify(component), tmp_path, limits, **kw)
    assert isinstance(guest, ComponentGuest)
    return guest


# --- the committed examples ---------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_basic_vectors(engine, basics, tmp_path, lang):
    guest = _open(engine, basics[lang], tmp_path)
    assert guest.call_mode == "fast"
    outcomes = guest.call_batch([data for data, _ in VECTORS])
    assert outcomes == [[out] for _, out in VECTORS]
    assert guest.last_output_meta is not None and len(guest.last_output_meta) == len(VECTORS)


@pytest.mark.parametrize("lang", LANGS)
def test_basic_failures_are_errors_and_the_instance_lives_on(engine, basics, tmp_path, lang):
    guest = _open(engine, basics[lang], tmp_path)
    for data in FAILURES:
        [outcome] = guest.call_batch([data])
        assert isinstance(outcome, GuestError), data
        assert outcome.kind == ERROR
        assert str(outcome).startswith("process() returned an error: ")
    assert guest.call(VECTORS[0][0]) == [VECTORS[0][1]]
    assert guest.instances == 1  # an err result keeps the instance


def test_error_text_names_the_exception(engine, basics, tmp_path):
    guest = _open(engine, basics["python"], tmp_path)
    with pytest.raises(GuestError, match=r"ValueError: 'money' must be an integer, got 1.5"):
        guest.call(b'{"name":"x","money":1.5}')
    guest = _open(engine, basics["js"], tmp_path)
    with pytest.raises(GuestError, match=r"TypeError: 'money' must be an integer"):
        guest.call(b'{"name":"x","money":1.5}')


@pytest.mark.parametrize("lang", LANGS)
def test_public_call_path_agrees_with_the_fast_one(engine, basics, tmp_path, lang):
    public = _open(engine, basics[lang], tmp_path, fast=False)
    assert public.call_mode == "public"
    inputs = [data for data, _ in VECTORS] + FAILURES[:3] + [b"x" * 5000]
    fast = _open(engine, basics[lang], tmp_path)
    assert public.call_batch(inputs) == fast.call_batch(inputs)


def test_component_recognised_and_cached_apart(engine, basics, tmp_path):
    wasm_path = EXAMPLES / "basic" / "python" / "basic.wasm"
    wasm = wasm_path.read_bytes()
    assert is_component(wasm)
    assert not is_component((EXAMPLES / "basic" / "c" / "basic.wasm").read_bytes())
    assert classify(basics["python"]) is ModuleKind.COMPONENT
    started = time.monotonic()
    loaded = module_cache.load(engine, wasm_path, CACHE)  # cached by the fixture
    assert time.monotonic() - started < 2.0
    assert isinstance(loaded, wc.Component)
    artifacts = list(CACHE.glob("*/*.component.cwasm"))
    assert artifacts, "component artifacts are stored as <sha256>.component.cwasm"


# --- limits, traps and state (the WAT component) -------------------------------------------


def test_trap_fails_the_message_and_rebuilds_the_instance(engine, wat_component, tmp_path):
    guest = _open(engine, wat_component, tmp_path)
    assert guest.call_batch([b"hi", b"n", b"t", b"ok"]) == [
        [b"hi"],
        [],
        GuestError(
            TRAP, "wasm trap: wasm `unreachable` instruction executed in m!<wasm function 2>"
        ),
        [b"ok"],
    ]
    assert guest.instances == 2


def test_err_result_is_an_error(engine, wat_component, tmp_path):
    guest = _open(engine, wat_component, tmp_path)
    with pytest.raises(GuestError) as info:
        guest.call(b"e")
    assert info.value == GuestError(ERROR, "process() returned an error: bad input")


def test_timeout(engine, wat_component, tmp_path):
    guest = _open(engine, wat_component, tmp_path, GuestLimits(timeout_ms=50))
    started = time.monotonic()
    [outcome, after] = guest.call_batch([b"loop", b"ok"])
    assert outcome == GuestError(TIMEOUT, "component exceeded its time limit of 50 ms")
    assert time.monotonic() - started < 5
    assert after == [b"ok"]


def test_fuel(tmp_path):
    engine = new_engine(fuel=True)
    component = compile_module(engine, wasmtime.wat2wasm(WAT))
    guest = _open(engine, component, tmp_path, GuestLimits(fuel=100_000))
    assert guest.call_batch([b"loop", b"ok"]) == [
        GuestError(FUEL, "component ran out of fuel (limit 100000 per message)"),
        [b"ok"],
    ]


def test_memory_limit(engine, wat_component, tmp_path):
    guest = _open(engine, wat_component, tmp_path, GuestLimits(memory_limit=2 << 20))
    [outcome, after] = guest.call_batch([b"more memory", b"ok"])
    assert outcome == GuestError(
        MEMORY_LIMIT,
        "component ran out of memory under its limit of 2 MiB "
        "(then process() returned an error: out of memory)",
    )
    assert after == [b"ok"]
    assert guest.instances == 2  # rebuilt: it was stuck at its limit


def test_state_writes_of_a_failed_message_are_undone(engine, wat_component, tmp_path, store):
    host = HostContext({}, store)
    guest = _open(engine, wat_component, tmp_path, host=host)
    outcomes = guest.call_batch([b"add", b"poison", b"add"])
    assert outcomes[0] == [b"add"] and outcomes[2] == [b"add"]
    assert isinstance(outcomes[1], GuestError) and outcomes[1].kind == TRAP
    assert host.state_get(b"count") == b"2"


def test_state_without_a_store_traps_with_one_line(engine, wat_component, tmp_path):
    guest = _open(engine, wat_component, tmp_path)
    with pytest.raises(GuestError) as info:
        guest.call(b"add")
    assert info.value.kind == TRAP
    assert "host.state-add: this function has no state store" in str(info.value)


def test_host_functions_reach_the_host_context(store):
    host = HostContext({"c": "v"}, store)
    funcs = guest_component._HostFunctions(host)
    defined = {}

    class Recorder:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def add_instance(self, name):
            assert name in (guest_component.HOST_INTERFACE, BATCH_INTERFACE)
            return self

        def add_func(self, name, fn):
            defined[name] = lambda *args: fn(None, *args)

    class FakeLinker:
        def root(self):
            return Recorder()

    funcs.define(FakeLinker())  # type: ignore[arg-type]
    host.begin_message(MessageMeta(key="k1", properties={"q": "r"}, event_time=5))
    assert defined["state-add"]("n", 3) == 3
    defined["state-put"]("s", b"val")
    assert defined["state-get"]("s") == b"val"
    defined["state-delete"]("s")
    assert defined["state-get"]("s") is None
    assert defined["config-get"]("c") == "v" and defined["config-get"]("x") is None
    assert (defined["msg-key"](), defined["msg-property"]("q"), defined["msg-event-time"]()) == (
        "k1",
        "r",
        5,
    )
    defined["set-output-key"]("out")
    defined["set-output-property"]("a", "b")
    defined["set-output-event-time"](9)
    output = host.output
    assert (output.key, output.properties, output.event_time) == ("out", {"a": "b"}, 9)
    with pytest.raises(wasmtime.WasmtimeError, match=r"host\.set-output-event-time: event time -1"):
        defined["set-output-event-time"](-1)
    defined["log"]("warning", "hello")

    # Inside a batch call, select-input points metadata at one input's.
    funcs.begin([MessageMeta(key="a"), MessageMeta(key="b", event_time=7)])
    assert defined["msg-key"]() == "a"
    defined["select-input"](1)
    assert (defined["msg-key"](), defined["msg-event-time"]()) == ("b", 7)
    defined["set-output-key"]("for-b")
    defined["select-input"](0)
    defined["set-output-property"]("p", "for-a")
    assert [(o.key, o.properties) for o in funcs.outputs] == [(None, {"p": "for-a"}), ("for-b", {})]
    with pytest.raises(
        wasmtime.WasmtimeError, match=r"batch\.select-input: input index 2 is outside"
    ):
        defined["select-input"](2)


# --- create-time checks -------------------------------------------------------------------


def test_wrong_process_type_is_refused(engine):
    wasm = _component('(param "input" u32) (result u32)', "(param i32) (result i32)")
    with pytest.raises(InvalidModule, match="component export 'process' has the wrong type"):
        compile_module(engine, wasm)


def test_unknown_import_is_refused(engine):
    wasm = _component(
        '(param "input" (list u8)) (result (result (list (list u8)) (error string)))',
        "(param i32 i32) (result i32)",
        '(memory (core memory $i "memory")) (realloc (core func $i "r"))',
        '(import "acme:db/query@1.0.0" (instance))',
    )
    with pytest.raises(InvalidModule, match=r"component imports unknown 'acme:db/query@1\.0\.0'"):
        compile_module(engine, wasm)


def test_missing_process_is_refused(engine):
    wasm = wasmtime.wat2wasm("(component)")
    with pytest.raises(InvalidModule, match="component does not export 'process'"):
        compile_module(engine, wasm)


def test_sandbox_grants_reach_the_component_wasi_context(engine, wat_component, tmp_path):
    # A granted directory that is gone cannot be preopened: proof the grants are applied.
    from fsworker.guest import GuestInitError
    from fsworker.sandbox import DirGrant, Sandbox

    gone = Sandbox(dirs=(DirGrant(str(tmp_path / "gone"), "/data", False),))
    with pytest.raises(GuestInitError, match="gone"):
        _open(engine, wat_component, tmp_path, sandbox=gone)
    there = Sandbox(dirs=(DirGrant(str(tmp_path), "/data", True),), env=(("A", "1"),))
    assert _open(engine, wat_component, tmp_path, sandbox=there).call(b"ok") == [b"ok"]
