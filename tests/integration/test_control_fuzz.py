"""10,000 malformed and hostile control messages at a real fsd, over the wire.

Hypothesis builds batches of messages that are each wrong in at least one way
(garbage bytes, wrong msgpack types, unknown commands, missing and extra
fields, path traversal in names and file names, bad topics, deep nesting,
wrong protocol versions, frames over the size limit). A raw DEALER sends a
batch and collects the replies. Checked: fsd never dies and still answers
ping; every reply decodes to an error with a code and a message; a frame over
ZMQ_MAXMSGSIZE gets no reply (libzmq drops it with the connection) while one
just over max_request_bytes gets an explicit error; the registry (fsctl list
and the registry file) is the same before and after.

A second test puts odd values in every field of every command (and in the
envelope): lists and maps nested 33 to 5000 levels (the deepest msgpack can
carry, and repr() cannot), extension types, 64-bit extremes, NaN, bytes where
text is expected and the reverse, maps with bytes and integer keys, values of
200 KB, sends each from a DEALER and from a REQ socket, and sends multi-frame
requests from both. Checked besides the above: no reply is ``internal`` (the
input got past validation into code that failed), and a REQ client always gets
a reply it can read (its socket drops one without the empty delimiter).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fscommon.protocol import PROTOCOL_VERSION, REQUEST_FIELDS, decode_reply, encode_request
from fsd.control_server import MAXMSGSIZE_SLACK
from fsd.request_validation import SCHEMAS
from tests.helpers import EXAMPLES, Fsd, pid_alive, unique

pytestmark = pytest.mark.integration

TOTAL = 10_000
LIMIT = 256 * 1024  # fsd's max_request_bytes in this test
VICTIM = "victim"  # a registered (stopped) function: hostile requests aim at it
EMPTY_MODULE = b"\0asm\1\0\0\0"

# --- hostile values --------------------------------------------------------------------------

TRAVERSAL = [
    "..", "../victim", "../../etc/passwd", "victim/../victim", "/etc/passwd", "victim/",
    "./victim", "victim\x00", "victim\n", "..\\..\\x", "%2e%2e%2f", "victim;rm -rf /",
    "", " ", "-victim", ".victim", "_victim", "a" * 65, "vïctim", "victim\u202e",
]  # fmt: skip
BAD_TOPICS = [
    "", "a b", "../x", "persistent://", "persistent://t/n/", "x" * 300, "a/b", "http://x/y/z",
    "persistent://../../x", "topic\x00", "*", "topic\n",
]  # fmt: skip
BAD_FILE_NAMES = ["../../etc/passwd", "/etc/passwd", "..", ".", "a/b", "x\x00y", "", "n" * 300]
BAD_REPLICAS = [0, -1, 65, 10_001, 2**64 - 1, -(2**63)]
BAD_LIMITS = [0, -1, 10_001, 2**64 - 1, -(2**63)]
BAD_CONFIGS = [{"k": 1}, {"": "v"}, {"k": None}, {"k": "v" * 70_000}, {b"k": "v"}]
BAD_OPTIONS = [
    {"fuel": "x"}, {"BAD": 1}, {"dead_letter_topic": "../x"}, {"pass_through": [1]},
    {"json_schema": {"a": [{"b": {"c": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}]}},
    {"json_schema": {"k": b"\x00"}}, {"memory_limit": True},
]  # fmt: skip
OPTION_TYPES = {
    "guarantee": str, "ordering": str, "subscription_position": str, "input_pattern": str,
    "max_retries": int, "retry_delay_ms": int, "dead_letter_topic": str, "timeout_ms": int,
    "memory_limit": int, "fuel": int, "input_schema": str, "output_schema": str,
    "json_schema": dict, "avro_schema": str, "pass_through": list,
}  # fmt: skip
OPTION_POOLS = {str: ["../x", "", "x" * 1000], int: [-1, 2**64 - 1, -(2**63)], dict: [{"$ref": 1}],
                list: [["bogus"], [None]]}  # fmt: skip


@dataclass(frozen=True)
class Slot:
    """One place in a request: a hostile value replaces it, the rest stays valid."""

    cmd: str
    base: dict[str, Any]
    path: tuple[str, ...]
    accepts: tuple[type, ...]  # values of these types may be valid here: use the pool instead
    pool: list[Any]  # values of an accepted type that are invalid here


def _slots() -> list[Slot]:
    create = {"name": VICTIM, "wasm": EMPTY_MODULE, "inputs": ["fz-in"], "output": "fz-out"}
    state = {"name": VICTIM, "op": "put", "key": b"k", "value": b"v"}
    update = {"name": VICTIM, "config": {"a": "b"}}
    name = (str,), TRAVERSAL
    slots = [
        Slot("create", create, ("name",), *name),
        Slot("create", create, ("wasm",), (bytes,), [b""]),
        Slot("create", create, ("wasm_name",), (str,), BAD_FILE_NAMES),
        Slot("create", create, ("inputs",), (str, list), [*BAD_TOPICS, ["a"] * 101, ["../x"]]),
        Slot("create", create, ("output",), (str,), BAD_TOPICS),
        Slot("create", create, ("replicas",), (int,), BAD_REPLICAS),
        Slot("create", create, ("config",), (dict,), BAD_CONFIGS),
        Slot("create", create, ("options",), (dict,), BAD_OPTIONS),
        Slot("create", create, ("wait",), (bool,), ["true"]),
        Slot("delete", {"name": VICTIM, "purge": False}, ("name",), *name),
        Slot("delete", {"name": VICTIM, "purge": False}, ("purge",), (bool,), [1, "yes"]),
        Slot("scale", {"name": VICTIM, "replicas": 1}, ("name",), *name),
        Slot("scale", {"name": VICTIM, "replicas": 1}, ("replicas",), (int,), BAD_REPLICAS),
        Slot("update", update, ("name",), *name),
        Slot("update", update, ("wasm",), (bytes,), [b""]),
        Slot("update", update, ("wasm_name",), (str,), BAD_FILE_NAMES),
        Slot("update", update, ("config",), (dict,), BAD_CONFIGS),
        Slot("state", state, ("name",), *name),
        Slot("state", state, ("op",), (str,), ["drop", "", "GET", "get\n"]),
        Slot("state", state, ("key",), (bytes,), [b"", b"k" * 5000]),
        Slot("state", state, ("value",), (bytes,), ["v"]),
        Slot("state", state, ("prefix",), (bytes,), ["p"]),
        Slot("state", {**state, "op": "list"}, ("limit",), (int,), BAD_LIMITS),
        Slot("status", {}, ("name",), *name),
    ]
    slots += [Slot(cmd, {"name": VICTIM}, ("name",), *name) for cmd in ("stop", "start", "restart")]
    for option, typ in OPTION_TYPES.items():
        # A new name, so the option is checked; output == input, so even an option that
        # passes cannot create anything ("the function would loop").
        base = {**create, "name": "fz-new", "inputs": ["fz-loop"], "output": "fz-loop"}
        base["options"] = {}
        slots.append(Slot("create", base, ("options", option), (typ,), OPTION_POOLS[typ]))
    return slots


SLOTS = _slots()
ALL_FIELDS = {key for schema in SCHEMAS.values() for key in schema}

# What msgpack can carry: 64-bit integers.
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.binary(max_size=30),
)
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def deep(depth: int, maps: bool) -> bytes:
    """A msgpack value nested ``depth`` levels (built by hand: the packer refuses deep ones)."""
    level = b"\x81\xa1a" if maps else b"\x91"  # {"a": ...} or [...]
    return level * depth + b"\xc0"


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def envelope(cmd: Any, args: Any, **override: Any) -> dict[Any, Any]:
    env: dict[Any, Any] = {"v": PROTOCOL_VERSION, "id": 7, "cmd": cmd, "args": args}
    env.update(override)
    return env


def _accepted(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int subclass, and nil means "absent": both may be valid, never assume not.
    return value is None or any(type(value) is t for t in types)


def _place(slot: Slot, value: Any, turn: int) -> bytes:
    chosen = slot.pool[turn % len(slot.pool)] if _accepted(value, slot.accepts) else value
    args = json_copy(slot.base)
    target = args
    for key in slot.path[:-1]:
        target = target[key]
    target[slot.path[-1]] = chosen
    return pack(envelope(slot.cmd, args))


def json_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: json_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_copy(v) for v in obj]
    return obj


@st.composite
def hostile_batch(draw: st.DrawFn) -> list[bytes]:
    """About 60 hostile frames built around one drawn value (hypothesis shrinks that value)."""
    value = draw(plain)
    turn = draw(st.integers(min_value=0, max_value=1000))
    key = draw(st.one_of(st.text(min_size=1, max_size=20), st.sampled_from(["__class__", "id"])))
    key = key if key not in ALL_FIELDS else f"x{key}"
    garbage = draw(st.binary(max_size=200))
    depth = draw(st.sampled_from([17, 100, 1000, 1100, 5000]))

    frames = [_place(slot, value, turn) for slot in SLOTS]
    # An unexpected field in every command's arguments.
    for cmd, schema in SCHEMAS.items():
        base = {"name": VICTIM} if "name" in schema else {}
        frames.append(pack(envelope(cmd, {**base, key: value})))
    # The envelope itself.
    frames += [
        pack(
            envelope(
                "ping", {}, v=value if not _accepted(value, (int,)) else [True, 1.0, 2][turn % 3]
            )
        ),
        pack(envelope("ping", {}, id=value if not _accepted(value, (int,)) else "1")),
        pack(envelope(f"x-{value[:50]}" if isinstance(value, str) else value, {})),
        pack(envelope("list", value if not _accepted(value, (dict,)) else [value])),
        pack({k: v for k, v in envelope("ping", {}).items() if k != ("v", "id", "cmd")[turn % 3]}),
        pack({**envelope("ping", {}), (f"x{key}" if key in REQUEST_FIELDS else key): value}),
        pack(value) if not isinstance(value, dict) else pack([value]),
    ]
    # Bytes that are not a request: garbage, truncated, too deep, an extension type.
    good = pack(envelope("status", {"name": VICTIM}))
    create_head = pack({"v": PROTOCOL_VERSION, "id": 1, "cmd": "create"})
    args = pack({"name": "fz-deep", "wasm": EMPTY_MODULE, "inputs": ["i"]})
    frames += [
        garbage if garbage else b"\xc1",
        good[: turn % len(good)],
        b"\x84" + create_head[1:] + pack("args") + b"\x84" + args[1:] + pack("options")
        + b"\x81" + pack("json_schema") + deep(depth, maps=turn % 2 == 0),
        pack(envelope("ping", {}, id=msgpack.ExtType(5, b"xx"))),
    ]  # fmt: skip
    return frames


PER_BATCH = len(SLOTS) + len(SCHEMAS) + 7 + 4


# --- the harness -------------------------------------------------------------------------------


def _registry_rows(state_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(state_dir / "registry.sqlite3") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows: list[tuple[Any, ...]] = []
        for table in sorted(tables):
            rows += [(table, *row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1")]
        return rows


class Client:
    """A raw DEALER (and a REQ for the delimiter case) on fsd's control socket."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.ctx = zmq.Context()
        self.dealer = self._dealer()
        self.sent = 0
        self.no_reply = 0

    def _dealer(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    def exchange(self, frames: list[bytes], timeout: float = 20.0) -> list[bytes]:
        """Send every frame, then read one reply per frame (fsd answers each in order)."""
        for frame in frames:
            self.dealer.send(frame)
        self.sent += len(frames)
        replies = []
        deadline = time.monotonic() + timeout
        while len(replies) < len(frames):
            left = deadline - time.monotonic()
            assert left > 0 and self.dealer.poll(int(left * 1000)), (
                f"fsd answered {len(replies)} of {len(frames)} messages"
            )
            replies.append(self.dealer.recv())
        return replies

    def oversized(self, frame: bytes) -> None:
        """A frame over ZMQ_MAXMSGSIZE: libzmq drops it and the connection, so no reply."""
        sock = self._dealer()
        sock.send(frame)
        self.sent += 1
        self.no_reply += 1
        assert not sock.poll(300), "a frame over the size limit must not be answered"
        sock.close()

    def close(self) -> None:
        self.dealer.close()
        self.ctx.term()


def check_error_reply(frame: bytes, sent: bytes) -> None:
    """A reply must decode and be an error with a code and a one-line message."""
    reply = decode_reply(frame)
    assert reply.ok is False, f"hostile message {sent[:120]!r} was accepted: {reply.data!r}"
    assert reply.error_code and reply.error_message, reply
    assert reply.error_code != "internal", (
        f"hostile message {sent[:120]!r} got past validation: {reply.error_message}"
    )
    assert "\n" not in reply.error_message and len(reply.error_message) < 2000, reply


@pytest.fixture
def target(workdir: Path, pulsar_url: str):
    daemon = Fsd(workdir, pulsar_url, extra=["--max-request-bytes", str(LIMIT)]).start()
    basic = str(EXAMPLES / "basic" / "c" / "basic.wasm")
    made = daemon.ctl(
        "create", "-n", VICTIM, "-a", basic, "-i", unique("in"), "-o", unique("out"), "--no-wait"
    )
    assert made.returncode == 0, made.stderr
    assert daemon.ctl("stop", "-n", VICTIM).returncode == 0
    yield daemon
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.stop()


def test_fsd_survives_10k_hostile_messages(target: Fsd):
    list_before = target.ctl_json("list")
    rows_before = _registry_rows(target.state_dir)
    client = Client(target.endpoint)
    started = time.monotonic()

    @settings(
        max_examples=TOTAL // PER_BATCH + 1,
        deadline=None,
        # Reproducible by default; FS_FUZZ_RANDOM=1 explores new examples on each run.
        derandomize=not os.environ.get("FS_FUZZ_RANDOM"),
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile_batch())
    def hostile_batches(batch: list[bytes]) -> None:
        for sent, reply in zip(batch, client.exchange(batch), strict=True):
            check_error_reply(reply, sent)

    try:
        hostile_batches()
        # Sizes around the limit: an explicit error just over it, silence far over it.
        filler = {"name": VICTIM, "op": "put", "key": b"k"}
        just_over = encode_request(1, "state", {**filler, "value": b"x" * LIMIT})
        assert LIMIT < len(just_over) <= LIMIT + MAXMSGSIZE_SLACK
        (reply,) = client.exchange([just_over])
        check_error_reply(reply, just_over)
        assert "exceeds the" in decode_reply(reply).error_message
        for size in (LIMIT + MAXMSGSIZE_SLACK + 1, 4 * LIMIT):
            client.oversized(b"\x92" + b"\xc4" * size)
        # REQ clients (an empty delimiter frame) get their error back too.
        req = client.ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(target.endpoint)
        req.send(b"\xc1")
        assert req.poll(5000), "a REQ client got no reply"
        check_error_reply(req.recv(), b"\xc1")
        req.close()
        client.sent += 1
        # Several frames in one request.
        client.dealer.send_multipart([b"a", b"b", encode_request(1, "ping")])
        assert client.dealer.poll(5000)
        check_error_reply(client.dealer.recv(), b"multipart")
        client.sent += 1
    finally:
        client.close()
    elapsed = time.monotonic() - started

    assert client.sent >= TOTAL, client.sent
    assert pid_alive(target.proc.pid) and target.proc.poll() is None, target.log_tail()
    assert target.ctl("ping").returncode == 0
    assert target.ctl_json("list") == list_before
    assert _registry_rows(target.state_dir) == rows_before
    print(f"{client.sent} hostile messages in {elapsed:.1f}s ({client.no_reply} unanswered)")


# --- odd values in every field -------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """msgpack bytes placed as they are (the packer refuses values this deep or this odd)."""

    data: bytes


def pack_raw(obj: Any) -> bytes:
    """Pack ``obj`` with any ``Raw`` inside it spliced in as is."""
    if isinstance(obj, Raw):
        return obj.data
    packer = msgpack.Packer(use_bin_type=True)
    if isinstance(obj, dict):
        head = packer.pack_map_header(len(obj))
        return head + b"".join(pack_raw(k) + pack_raw(v) for k, v in obj.items())
    if isinstance(obj, list):
        return packer.pack_array_header(len(obj)) + b"".join(pack_raw(v) for v in obj)
    return packer.pack(obj)


BIG = 70_000  # over every text field's limit (config values: 65,536), under this fsd's 256 KB
ODD: list[Any] = [
    *(Raw(deep(depth, maps)) for depth in (33, 500, 990, 1000, 1023, 1100, 5000)
      for maps in (False, True)),
    msgpack.ExtType(5, b"xx"), msgpack.Timestamp(0, 1), msgpack.ExtType(1, b"e" * BIG),
    2**64 - 1, -(2**63), float("nan"), float("inf"), -0.0,
    b"victim", b"b" * BIG, "t" * BIG, [None] * 40_000,
    {b"name": "victim"}, Raw(b"\x81\x01\xa1v"), Raw(b"\x81\xc0\xa1v"), Raw(b"\x81\x91\x01\xa1v"),
    {"k": float("nan")}, {"k": [[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]},
]  # fmt: skip


def _may_be_valid(value: Any, accepts: tuple[type, ...]) -> bool:
    # A value of a type the field takes may be valid there: only the type-odd ones go in.
    return any(type(value) is t for t in accepts)


def _odd_fields() -> list[tuple[str, dict[str, Any], tuple[str, ...], tuple[type, ...]]]:
    """(command, valid base arguments, path of the field, types the field takes) for every
    field of every command, and the places inside the map- and list-valued ones."""
    create = {"name": "fz-odd", "wasm": EMPTY_MODULE, "inputs": ["fz-loop"], "output": "fz-loop"}
    bases: dict[str, dict[str, Any]] = {
        "create": create,
        "state": {"name": VICTIM, "op": "get", "key": b"k"},
        "scale": {"name": VICTIM, "replicas": 1},
        "update": {"name": VICTIM, "config": {"a": "b"}},
        "delete": {"name": VICTIM, "purge": False},
    }
    takes = {"wasm": (bytes,), "key": (bytes,), "value": (bytes,), "prefix": (bytes,)}
    fields = []
    for cmd, schema in SCHEMAS.items():
        base = bases.get(cmd, {"name": VICTIM} if "name" in schema else {})
        for key in [*schema, "unexpected"]:
            fields.append((cmd, base, (key,), takes.get(key, ())))
    inner = [
        ("create", ("inputs", 0)), ("create", ("config", "k")), ("update", ("config", "k")),
        ("update", ("grants", "allow_dirs")), ("update", ("grants", "allow_env")),
        ("logs", ("cursor", "0")),
        *(("create", ("options", option)) for option in OPTION_TYPES),
        ("create", ("options", "allow_dirs")), ("create", ("options", "allow_env")),
    ]  # fmt: skip
    for cmd, path in inner:
        base = json_copy(bases.get(cmd, {"name": VICTIM}))
        base.setdefault(path[0], [None] if isinstance(path[1], int) else {})
        # avro_schema takes any text up to 1 MiB: a huge one may pass the schema
        fields.append((cmd, base, path, (str,) if path[-1] == "avro_schema" else ()))
    return fields


def odd_frames() -> list[bytes]:
    """Every odd value in every field of every command, and in the envelope."""
    frames = []
    for cmd, base, path, accepts in _odd_fields():
        for value in ODD:
            if _may_be_valid(value, accepts):
                continue
            args = json_copy(base)
            target = args
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            frames.append(pack_raw(envelope(cmd, args)))
    for value in ODD:
        for field_name in REQUEST_FIELDS:
            if field_name == "id" and _may_be_valid(value, (int,)):
                continue  # any 64-bit integer is a valid id
            frames.append(pack_raw({**envelope("status", {}), field_name: value}))
        frames.append(pack_raw(value))
    return frames


def req_exchange(ctx: zmq.Context, endpoint: str, frames: list[bytes], parts: int = 1) -> bytes:
    """Send each request from a REQ socket (``parts`` copies make it multi-frame): a reply
    must come back to each, or the socket is stuck; the last reply's payload is returned."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    reply = b""
    try:
        for frame in frames:
            sock.send_multipart([frame] * parts)
            assert sock.poll(5000), f"a REQ client got no reply it could read to {frame[:120]!r}"
            reply = sock.recv_multipart()[-1]
            check_error_reply(reply, frame)
    finally:
        sock.close()
    return reply


def test_odd_values_in_every_field_from_dealer_and_req(target: Fsd):
    list_before = target.ctl_json("list")
    rows_before = _registry_rows(target.state_dir)
    frames = odd_frames()
    client = Client(target.endpoint)
    try:
        for start in range(0, len(frames), 200):
            batch = frames[start : start + 200]
            for sent, reply in zip(batch, client.exchange(batch, timeout=60), strict=True):
                check_error_reply(reply, sent)
        req_exchange(client.ctx, target.endpoint, frames)
        # Multi-frame requests, from a REQ socket (after its delimiter) and from a DEALER.
        good = encode_request(11, "status", {"name": VICTIM})
        bad = pack_raw(envelope("status", {"name": ODD[4]}))
        for parts in (2, 3):
            reply = req_exchange(client.ctx, target.endpoint, [good, bad, b"\xc1"], parts)
            assert "one frame" in decode_reply(reply).error_message
        assert decode_reply(req_exchange(client.ctx, target.endpoint, [good], 2)).id == 11
        for multi in ([b"a", b"b", good], [b"", b"x", good], [good, b""], [b"", b"", good]):
            client.dealer.send_multipart(multi)
            assert client.dealer.poll(5000), f"no reply to the multi-frame request {multi!r}"
            check_error_reply(client.dealer.recv_multipart()[-1], repr(multi).encode())
    finally:
        client.close()
    assert pid_alive(target.proc.pid) and target.proc.poll() is None, target.log_tail()
    assert target.ctl("ping").returncode == 0
    assert target.ctl_json("list") == list_before
    assert _registry_rows(target.state_dir) == rows_before
    print(f"{len(frames)} odd requests, each from a DEALER and a REQ socket")
