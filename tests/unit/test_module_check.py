import pytest

from fsworker.engine import engine_fingerprint, new_engine
from fsworker.module_check import InvalidModule, ModuleKind, classify, compile_module
from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES


@pytest.fixture(scope="module")
def engine():
    return new_engine()


def _classify(engine, data):
    return classify(compile_module(engine, data))


def test_examples_are_classified(engine):
    basic = (EXAMPLES / "basic" / "example_basic.wasm").read_bytes()
    stdio = (EXAMPLES / "basic" / "example_basic_stdio.wasm").read_bytes()
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
