import pytest

from fsworker import module_cache
from fsworker.engine import new_engine
from fsworker.guest import GuestError, GuestInitError, open_guest
from fsworker.module_check import ModuleKind, classify
from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES

PERSON_IN = b'{"name":"rbt","money":2}'
PERSON_OUT = b'{"name":"rbt","money":3,"expected":0}'


@pytest.fixture(scope="module")
def engine():
    return new_engine()


def _guest(engine, path, tmp_path):
    module = module_cache.load(engine, path, tmp_path / "cache")
    return open_guest(engine, module, classify(module), tmp_path / "scratch")


def test_abi_example(engine, tmp_path):
    guest = _guest(engine, EXAMPLES / "basic" / "example_basic.wasm", tmp_path)
    assert guest.call(PERSON_IN) == PERSON_OUT
    assert guest.call(b'{"name":"a","money":-5,"expected":7}') == (
        b'{"name":"a","money":-4,"expected":7}'
    )
    with pytest.raises(GuestError) as info:
        guest.call(b"not json")
    assert info.value.kind == "error"
    assert guest.call(PERSON_IN) == PERSON_OUT


def test_stdio_example(engine, tmp_path):
    guest = _guest(engine, EXAMPLES / "basic" / "example_basic_stdio.wasm", tmp_path)
    assert guest.call(PERSON_IN) == PERSON_OUT
    with pytest.raises(GuestError, match="exited with code 1"):
        guest.call(b"{}")
    assert guest.call(PERSON_IN) == PERSON_OUT


def test_trap_rebuilds_the_instance(engine, tmp_path):
    guest = _guest(engine, fx.write(tmp_path, "echo", fx.ECHO), tmp_path)
    assert guest.call(b"hello") == b"hello"
    with pytest.raises(GuestError) as info:
        guest.call(b"X marks a trap")
    assert info.value.kind == "trap" and "wasm trap" in str(info.value)
    assert guest.call(b"still alive") == b"still alive"
    assert guest.call(b"") is None  # zero-length output: no record


def test_trap_in_initialize_is_an_init_error(engine, tmp_path):
    path = fx.write(tmp_path, "trapinit", fx.TRAP_IN_INITIALIZE)
    module = module_cache.load(engine, path, None)
    with pytest.raises(GuestInitError, match="failed to initialise"):
        open_guest(engine, module, ModuleKind.ABI, tmp_path)


def test_compiled_cache_is_used_and_survives_corruption(engine, tmp_path):
    path = EXAMPLES / "basic" / "example_basic.wasm"
    cache = tmp_path / "cache"
    module_cache.load(engine, path, cache)
    import hashlib

    artifact = module_cache.artifact_path(cache, hashlib.sha256(path.read_bytes()).hexdigest())
    assert artifact.exists()
    artifact.write_bytes(b"garbage")
    module = module_cache.load(engine, path, cache)  # falls back to compiling
    assert classify(module) is ModuleKind.ABI
    assert artifact.read_bytes() != b"garbage"
