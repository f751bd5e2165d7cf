import pytest

from fsworker.engine import engine_fingerprint, new_engine
from fsworker.module_check import InvalidModule, ModuleKind, classify, compile_module
from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES


@pytest.fixture(scope="module")
def engine():
    return new_engine()


BAD_BATCH_TYPE = """
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "process") (param i32 i32) (result i64) (i64.const 0))
  (func (export "process_batch") (param i32) (result i64) (i64.const 0)))
"""

BATCH_NOT_A_FUNCTION = """
(module
  (memory (export "memory") 1)
  (global (export "process_batch") i32 (i32.const 0))
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "process") (param i32 i32) (result i64) (i64.const 0)))
"""


def _classify(engine, data):
    return classify(compile_module(engine, data))


def test_examples_are_classified(engine):
    basic = (EXAMPLES / "basic" / "c" / "basic.wasm").read_bytes()
    stdio = (EXAMPLES / "basic" / "c" / "basic_stdio.wasm").read_bytes()
    assert _classify(engine, basic) is ModuleKind.ABI
    assert _classify(engine, stdio) is ModuleKind.WASI_STDIO


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"hello, I am not wasm", "not a WebAssembly module"),
        (b"\0asm\x01\0\0\0\xff\xff", "does not compile"),
        (fx.wasm(fx.NO_EXPORTS), "missing: memory, alloc, process"),
        (fx.wasm(fx.MISSING_PROCESS), "missing: process"),
        (fx.wasm(fx.BAD_PROCESS_TYPE), "export 'process' has type"),
        (fx.wasm(fx.UNKNOWN_IMPORT), "unknown 'env.launch_missiles'"),
        (fx.wasm(BAD_BATCH_TYPE), "export 'process_batch' has type (i32) -> (i64)"),
        (fx.wasm(BATCH_NOT_A_FUNCTION), "export 'process_batch' must be a function"),
    ],
)
def test_bad_modules_get_one_line_reasons(engine, data, fragment):
    with pytest.raises(InvalidModule) as info:
        _classify(engine, data)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_fingerprint_names_version_and_arch():
    fp = engine_fingerprint()
    assert fp.startswith("wasmtime-50.0.1-")


def test_process_batch_is_optional_and_checked(engine):
    assert _classify(engine, fx.wasm(fx.BATCH_ECHO)) is ModuleKind.ABI
    assert _classify(engine, fx.wasm(fx.ECHO)) is ModuleKind.ABI


def test_the_memory_probe_is_added_where_memory_grows(engine):
    probed = compile_module(engine, fx.wasm(fx.MEMORY_HOG))
    assert "__fs_memory_probe" in [e.name for e in probed.exports]
    assert classify(probed) is ModuleKind.ABI
    plain = compile_module(engine, fx.wasm(fx.ECHO))  # no memory.grow: left alone
    assert "__fs_memory_probe" not in [e.name for e in plain.exports]
    basic = (EXAMPLES / "basic" / "c" / "basic.wasm").read_bytes()
    assert "__fs_memory_probe" in [e.name for e in compile_module(engine, basic).exports]


def test_fingerprint_depends_on_fuel():
    assert engine_fingerprint(fuel=True) != engine_fingerprint()
    assert engine_fingerprint(fuel=False) == engine_fingerprint()
