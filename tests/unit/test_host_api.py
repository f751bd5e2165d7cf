"""The host API, version 1 (fsworker/host_api.py, docs/abi.md "Host API"): no broker.

Guests run against a HostContext over a real SqliteStateStore. Most tests run
twice: through the unchecked host-function callbacks (the default) and through
wasmtime-py's ``Linker.define_func`` fallback (``raw=False``).
"""

import struct

import pytest
import structlog

from fsworker import host_api, module_cache
from fsworker.engine import new_engine
from fsworker.guest import GuestError, GuestInitError, open_guest
from fsworker.guest_abi import AbiGuest
from fsworker.host_context import HostContext, MessageMeta, OutputMeta
from fsworker.module_check import (
    InvalidModule,
    ModuleKind,
    classify,
    compile_module,
    uses_message_metadata,
)
from fsworker.state_store import SqliteStateStore
from perf.harness import best_of
from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES

WORDCOUNT = EXAMPLES / "wordcount" / "c" / "wordcount.wasm"


@pytest.fixture(scope="module")
def engine():
    return new_engine()


@pytest.fixture(params=["raw", "public"])
def raw(request, monkeypatch):
    """Run a test through each way of defining the host functions."""
    if request.param == "public":
        monkeypatch.setattr(host_api, "RAW_AVAILABLE", False)
    return request.param == "raw"


@pytest.fixture
def store(tmp_path):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    yield store
    store.close()


def _open(engine, tmp_path, source, host, **kw) -> AbiGuest:
    path = source if not isinstance(source, str) else fx.write(tmp_path, "fixture", source)
    module = module_cache.load(engine, path, tmp_path / "cache")
    guest = open_guest(engine, module, classify(module), tmp_path / "scratch", host=host, **kw)
    assert isinstance(guest, AbiGuest)
    return guest


def _trap(guest, data) -> GuestError:
    with pytest.raises(GuestError) as info:
        guest.call(data)
    assert info.value.kind == "trap" and "\n" not in str(info.value)
    return info.value


def _records(outcomes):
    assert not any(isinstance(o, GuestError) for o in outcomes), outcomes
    return [[r.decode() for r in records] for records in outcomes]


def _word(word, count):
    return f'{{"word":"{word}","count":{count}}}'


# --- the wordcount example ---------------------------------------------------------


def test_wordcount_counts_exactly(engine, tmp_path, store, raw):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, WORDCOUNT, host)
    assert guest.batched and not guest.uses_message_metadata
    assert guest.call_mode == ("fast" if raw else "public")
    with structlog.testing.capture_logs() as logs:
        outcomes = guest.call_batch([b"The cat and the hat.", b"", b"THE END? the_end!"])
    assert guest.last_output_meta is None
    assert _records(outcomes) == [
        [_word("the", 1), _word("cat", 1), _word("and", 1), _word("the", 2), _word("hat", 1)],
        [],
        [_word("the", 3), _word("end", 1), _word("the", 4), _word("end", 2)],
    ]
    assert [(e["event"], e["log_level"], e["source"]) for e in logs] == [
        ("wordcount: empty line", "info", "guest")
    ]
    assert store.get(b"the") is None, "nothing is committed before the loop commits"
    host.transaction.commit()
    assert dict(store.scan(b"", 100)) == {
        b"the": b"4",
        b"cat": b"1",
        b"and": b"1",
        b"hat": b"1",
        b"end": b"2",
    }
    # A later batch (a new transaction, as after a restart) continues from the store.
    again = _open(engine, tmp_path, WORDCOUNT, HostContext({}, store))
    assert _records(again.call_batch([b"the end"])) == [[_word("the", 5), _word("end", 3)]]


def test_wordcount_min_length_config(engine, tmp_path, store):
    guest = _open(engine, tmp_path, WORDCOUNT, HostContext({"min_length": "3"}, store))
    with structlog.testing.capture_logs() as logs:
        outcomes = guest.call_batch([b"a big cat is on it", b"!!", b"x y"])
    assert _records(outcomes) == [[_word("big", 1), _word("cat", 1)], [], []]
    assert [e["event"] for e in logs] == ["wordcount: empty line"]  # "x y" has words

    bad = _open(engine, tmp_path, WORDCOUNT, HostContext({"min_length": "zero"}, store))
    with structlog.testing.capture_logs() as logs:
        outcomes = bad.call_batch([b"a b", b"a"])
    assert _records(outcomes) == [[_word("a", 1), _word("b", 1)], [_word("a", 2)]]
    assert [(e["event"], e["log_level"]) for e in logs] == [
        (
            'wordcount: config min_length="zero" is not an integer from 1 to 1000000; using 1',
            "info",
        )
    ]


def test_wordcount_process_handles_at_most_one_word(engine, tmp_path, store):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, WORDCOUNT, host, batch=False)
    assert not guest.batched
    with structlog.testing.capture_logs():
        assert _records(guest.call_batch([b"Hello", b"  "])) == [[_word("hello", 1)], []]
    error = guest.call_batch([b"two words"])[0]
    assert isinstance(error, GuestError) and error.kind == "error"
    host.transaction.commit()
    assert dict(store.scan(b"", 10)) == {b"hello": b"1"}, "the rejected input wrote nothing"


# --- state, config, log -------------------------------------------------------------


def test_state_missing_empty_and_the_retry_path(engine, tmp_path, store, raw):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, fx.HOST_API, host)
    assert guest.call(b"gkey") == [b"!"], "missing"
    assert guest.call(b"p\x03key") == []
    assert guest.call(b"gkey") == [b"=1"], "an empty value, not a missing one"
    guest.call(b"p\x03keyabcd")
    assert guest.call(b"gkey") == [b"=1abcd"], "exactly the buffer: one call"
    guest.call(b"p\x03keyhello world")
    assert guest.call(b"gkey") == [b"=2hello world"], "too big: called again with room"
    # Only min(len, cap) bytes are written; the length is the full one.
    assert guest.call(b"hkey") == [struct.pack("<i", 11) + b"hell####"]
    assert guest.call(b"h-nokey") == [struct.pack("<i", -1) + b"########"]
    host.transaction.commit()
    assert store.get(b"key") == b"hello world"
    guest.call(b"dkey")
    assert guest.call(b"gkey") == [b"!"]
    host.transaction.commit()
    assert store.get(b"key") is None


def test_state_add(engine, tmp_path, store, raw):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, fx.HOST_API, host)
    assert guest.call(b"an") == [struct.pack("<q", 5)]
    assert guest.call(b"an") == [struct.pack("<q", 10)]
    assert guest.call(b"gn") == [b"=110"]
    guest.call(b"p\x01wword")
    error = _trap(guest, b"aw")
    assert str(error).startswith(
        "wasm trap: fs.state_add: cannot add to a value that is not a decimal integer: b'word'"
    )
    host.transaction.commit()
    assert store.get(b"n") == b"10" and store.get(b"w") == b"word"


def test_no_state_store_is_a_trap(engine, tmp_path, raw):
    guest = _open(engine, tmp_path, fx.HOST_API, HostContext({}, None))
    assert str(_trap(guest, b"gk")).startswith(
        "wasm trap: fs.state_get: this function has no state store"
    )


def test_config_get(engine, tmp_path, raw):
    host = HostContext({"name": "Function Stream", "empty": "", "four": "1234"}, None)
    guest = _open(engine, tmp_path, fx.HOST_API, host)
    assert guest.call(b"cname") == [b"=2Function Stream"]
    assert guest.call(b"cempty") == [b"=1"]
    assert guest.call(b"cfour") == [b"=11234"]
    assert guest.call(b"cmissing") == [b"!"]


def test_log_lines_reach_structlog(engine, tmp_path, raw):
    guest = _open(engine, tmp_path, fx.HOST_API, HostContext({}, None))
    with structlog.testing.capture_logs() as logs:
        for data in (b"l0debug line", b"l1info line\n", b"l2warn", b"l3bad \xff", b"l9odd"):
            assert guest.call(data) == []
    assert [(e["event"], e["log_level"], e["source"]) for e in logs] == [
        ("debug line", "debug", "guest"),
        ("info line", "info", "guest"),
        ("warn", "warning", "guest"),
        ("bad \ufffd", "error", "guest"),
        ("odd", "info", "guest"),
    ]


def test_host_api_from_initialize(engine, tmp_path, raw):
    with structlog.testing.capture_logs() as logs:
        _open(engine, tmp_path, fx.HOST_INIT, HostContext({"greeting": "hi there"}, None))
    assert [(e["event"], e["log_level"]) for e in logs] == [("hi there", "info")]
    with pytest.raises(GuestInitError) as info:
        _open(engine, tmp_path, fx.HOST_INIT, HostContext({}, None))
    assert str(info.value).startswith(
        "module failed to initialise: fs.log: message [200, +4294967295) is outside guest "
        "memory of 65536 bytes"
    )


# --- message metadata ------------------------------------------------------------------


def test_message_metadata_read_and_output_metadata_set(engine, tmp_path, raw):
    host = HostContext({}, None)
    guest = _open(engine, tmp_path, fx.HOST_API, host)
    assert guest.uses_message_metadata
    metas = [
        MessageMeta(key="the-key", properties={"p": "v", "long": "0123456789"}, event_time=123),
        MessageMeta(),
    ]
    assert guest.call_batch([b"k", b"k"], metas) == [[b"=2the-key"], [b"!"]]
    assert guest.call_batch([b"rp", b"rlong", b"rnone"], [metas[0]] * 3) == [
        [b"=1v"],
        [b"=20123456789"],
        [b"!"],
    ]
    assert guest.call_batch([b"t", b"t"], metas) == [
        [struct.pack("<q", 123)],
        [struct.pack("<q", 0)],
    ]
    inputs = [
        b"Kout-key",
        b"P\x04namevalue",
        b"T" + struct.pack("<q", 99),
        b"echo",
        b"K\xff",  # not UTF-8: a trap
    ]
    outcomes = guest.call_batch(inputs, [MessageMeta()] * len(inputs))
    assert outcomes[:4] == [[data] for data in inputs[:4]]
    assert isinstance(outcomes[4], GuestError)
    assert str(outcomes[4]).startswith(
        "wasm trap: fs.set_output_key: key is not valid UTF-8: b'\\xff'"
    )
    assert guest.last_output_meta == [
        OutputMeta(key="out-key"),
        OutputMeta(properties={"name": "value"}),
        OutputMeta(event_time=99),
        OutputMeta(),
        OutputMeta(),
    ]
    # Without metas each message sees empty metadata; output metadata is still per input.
    assert guest.call_batch([b"k", b"Kx"]) == [[b"!"], [b"Kx"]]
    assert guest.last_output_meta == [OutputMeta(), OutputMeta(key="x")]
    with pytest.raises(ValueError, match="2 message metadata for 1 inputs"):
        guest.call_batch([b"k"], metas)


def test_metadata_module_with_process_batch_is_called_per_message(engine, tmp_path, store):
    wat = fx.STATE_BATCH.replace(
        '(memory (export "memory")',
        '(import "fs" "msg_event_time" (func (param i32)))\n  (memory (export "memory")',
        1,
    )
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, wat, host)
    assert guest.batched and guest.uses_message_metadata
    seen = []
    begin = host.begin_message
    host.begin_message = lambda meta: (seen.append(meta), begin(meta))  # type: ignore[method-assign]
    metas = [MessageMeta(key=str(i)) for i in range(3)]
    assert guest.call_batch([b"a", b"b", b"a"], metas) == [[b"a"], [b"b"], [b"a"]]
    assert seen == metas
    assert guest.last_output_meta == [OutputMeta()] * 3


def test_state_only_module_keeps_process_batch(engine, tmp_path, store):
    module = compile_module(engine, fx.wasm(fx.STATE_BATCH))
    assert classify(module) is ModuleKind.ABI and not uses_message_metadata(module)
    assert uses_message_metadata(compile_module(engine, fx.wasm(fx.HOST_API)))
    guest = _open(engine, tmp_path, fx.STATE_BATCH, HostContext({}, store))
    assert guest.batched and not guest.uses_message_metadata


# --- failures: traps, rollback ---------------------------------------------------------


def test_bad_pointers_trap_with_a_clear_message(engine, tmp_path, store, raw):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, fx.HOST_API, host)
    assert guest.instances == 1
    error = _trap(guest, b"B")
    assert str(error).startswith(
        "wasm trap: fs.state_get: key [2147418112, +4) is outside guest memory of 131072 bytes"
    )
    assert guest.instances == 2, "the instance is rebuilt after the trap"
    assert guest.call(b"echo") == [b"echo"]
    assert str(_trap(guest, b"Skey")).startswith(
        "wasm trap: fs.state_get: buffer [16384, +1048576) is outside guest memory"
    )
    # The out pointer is checked before the state changes.
    assert str(_trap(guest, b"Okey")).startswith(
        "wasm trap: fs.state_add: out_ptr [4294967280, +8) is outside guest memory"
    )
    assert guest.instances == 4
    assert host.transaction.get(b"key") is None


def test_raw_host_functions_with_the_public_call_path(engine, tmp_path, store):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, fx.HOST_API, host, fast=False)
    assert guest.call_mode == "public"
    guest.call(b"p\x03keyhello world")
    assert guest.call(b"gkey") == [b"=2hello world"]
    assert str(_trap(guest, b"B")).startswith(
        "wasm trap: fs.state_get: key [2147418112, +4) is outside guest memory"
    )


def test_host_call_from_a_start_function(engine, tmp_path, raw):
    with pytest.raises(GuestInitError) as info:
        _open(engine, tmp_path, fx.HOST_START, HostContext({}, None))
    assert str(info.value).startswith(
        "module failed to initialise: fs.log: called before the instance's memory is available"
    )


def test_failed_messages_leave_no_state(engine, tmp_path, store, raw):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, fx.HOST_API, host)
    outcomes = guest.call_batch([b"p\x01aA", b"Wb", b"Nc", b"p\x01dD"])
    assert outcomes[0] == [] and outcomes[3] == []
    assert isinstance(outcomes[1], GuestError) and outcomes[1].kind == "trap"
    assert isinstance(outcomes[2], GuestError) and outcomes[2].kind == "error"
    host.transaction.commit()
    assert dict(store.scan(b"", 10)) == {b"a": b"A", b"d": b"D"}


def test_batch_with_failed_inputs_keeps_only_the_good_inputs_writes(engine, tmp_path, store):
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, fx.STATE_BATCH, host)
    # 'Eb' is rejected inside a successful process_batch call: that call's writes are
    # undone and its inputs re-run one per call.
    outcomes = guest.call_batch([b"a", b"b", b"Eb", b"a"])
    assert outcomes[:2] == [[b"a"], [b"b"]] and outcomes[3] == [b"a"]
    assert isinstance(outcomes[2], GuestError) and outcomes[2].kind == "error"
    # 'Xq' traps the whole call: rebuilt, re-run one per call.
    outcomes = guest.call_batch([b"a", b"Xq", b"b"])
    assert outcomes[0] == [b"a"] and outcomes[2] == [b"b"]
    assert isinstance(outcomes[1], GuestError) and outcomes[1].kind == "trap"
    assert guest.instances == 3  # rebuilt after the whole call, then after 'Xq' alone
    host.transaction.commit()
    assert dict(store.scan(b"", 10)) == {b"a": b"3", b"b": b"2"}


def test_module_with_host_imports_needs_a_host_context(engine, tmp_path):
    with pytest.raises(GuestInitError) as info:
        _open(engine, tmp_path, WORDCOUNT, None)
    assert str(info.value) == (
        "module imports the host API (fs.config_get, fs.log, fs.state_add) but the worker "
        "gave it no host context"
    )


# --- classify: what is refused at create ---------------------------------------------


@pytest.mark.parametrize(
    ("wat", "message"),
    [
        (
            fx.HOST_UNKNOWN_IMPORT,
            "module imports unknown 'fs.state_gett': not in the Function Stream host API "
            "version 1 (see docs/abi.md)",
        ),
        (
            fx.HOST_WRONG_SIGNATURE,
            "import 'fs.state_get' has type (i32, i32, i32, i32) -> (i32), expected "
            "(i32, i32, i32, i32, i32) -> ()",
        ),
        (fx.HOST_NOT_A_FUNCTION, "import 'fs.log' must be a function"),
        (
            fx.HOST_IN_COMMAND,
            "module imports 'fs.log' but is a WASI command: the host API needs the Function "
            "Stream ABI (memory, alloc, process; see docs/abi.md)",
        ),
        (
            fx.UNKNOWN_IMPORT,
            "module imports unknown 'env.launch_missiles': only WASI preview 1 and the 'fs' "
            "host API are provided (see docs/abi.md)",
        ),
    ],
)
def test_classify_refuses_what_the_host_api_does_not_provide(engine, wat, message):
    module = compile_module(engine, fx.wasm(wat))
    with pytest.raises(InvalidModule) as info:
        classify(module)
    assert str(info.value) == message


def test_classify_accepts_the_whole_api(engine):
    module = compile_module(engine, fx.wasm(fx.HOST_API))
    assert {i.name for i in module.imports} == set(host_api.IMPORTS)
    assert classify(module) is ModuleKind.ABI
    wordcount = compile_module(engine, WORDCOUNT.read_bytes())
    assert classify(wordcount) is ModuleKind.ABI and not uses_message_metadata(wordcount)


# --- cost ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["raw", "public"])
def test_cost_of_state_get_put(engine, tmp_path, store, monkeypatch, path):
    """Prints the cost of fs.state_get + fs.state_put from wasm (pytest -s -k cost)."""
    if path == "public":
        monkeypatch.setattr(host_api, "RAW_AVAILABLE", False)
    host = HostContext({}, store)
    guest = _open(engine, tmp_path, fx.HOST_COST, host, batch=False)
    # 1. The calls alone: get + put of one key, in a loop inside one guest call (the
    #    key is in the batch's overlay after the first put, so no SQLite read).
    n = 20_000
    loop = struct.pack("<I", n) + b"counter"

    def pairs():
        host.transaction.rollback()  # the undo log would grow by n entries per call
        guest.call(loop)

    pairs()
    pair = best_of(pairs, 7) / n

    # 2. Per message, as the loop sends them: process_batch with 100 messages per call,
    #    each reading and writing its own key, which is committed in SQLite already.
    keys = [b"+key-%05d" % i for i in range(100)]
    host.transaction.rollback()
    for key in keys:
        host.transaction.put(key, b"12345678")
    host.transaction.commit()
    batched = _open(engine, tmp_path, fx.HOST_COST, host)
    plain = [b"=" + key[1:] for key in keys]

    def with_state():
        batched.call_batch(keys)
        host.transaction.rollback()

    def without():
        batched.call_batch(plain)

    per_message = (best_of(with_state, 7) - best_of(without, 7)) / len(keys)

    # 3. The commit the loop then makes for the batch (SQLite, synchronous=FULL).
    def commit():
        batched.call_batch(keys)
        host.transaction.commit()

    commit_cost = best_of(commit, 7) - best_of(with_state, 7)
    print(
        f"\n[{path}] fs.state_get + fs.state_put from wasm: {pair * 1e6:.2f} us per pair "
        f"(calls only); {per_message * 1e6:.2f} us per message in process_batch (100 per "
        f"call, SQLite read of a committed key + put); commit of 100 keys "
        f"{commit_cost * 1e3:.2f} ms per batch"
    )
    assert pair < 200e-6 and per_message < 500e-6
