"""The request envelope is strict: exactly v/id/cmd/args, v is the integer 1, the shape is
bounded before decoding; and every reply reaches the client, REQ sockets included."""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq

from fscommon.protocol import (
    MAX_ERROR_MESSAGE,
    MAX_REQUEST_DEPTH,
    MAX_REQUEST_ITEMS,
    ErrorCode,
    ProtocolError,
    check_request_shape,
    decode_reply,
    decode_request,
    encode_error,
    encode_request,
)
from fsd.control_server import ControlServer, reply_envelope


@pytest.mark.parametrize("version", [True, 1.0, "1", b"\x01", 2, None])
def test_only_the_integer_version_is_accepted(version):
    frame = msgpack.packb({"v": version, "id": 1, "cmd": "ping", "args": {}})
    with pytest.raises(ProtocolError) as info:
        decode_request(frame)
    assert info.value.code == ErrorCode.VERSION_MISMATCH


def test_unexpected_envelope_fields_are_refused():
    frame = msgpack.packb({"v": 1, "id": 1, "cmd": "ping", "args": {}, "sudo": True})
    with pytest.raises(ProtocolError, match=r"unexpected envelope field.*'sudo'"):
        decode_request(frame)


# --- issue 11 part 5: hostile shapes are refused on the bytes, before anything decodes ---------


def _deep(depth: int, maps: bool = False) -> bytes:
    return (b"\x81\xa1a" if maps else b"\x91") * depth + b"\xc0"


def _status_with_name(raw_name: bytes) -> bytes:
    head = msgpack.packb({"v": 1, "id": 3, "cmd": "status"})
    return b"\x84" + head[1:] + msgpack.packb("args") + b"\x81" + msgpack.packb("name") + raw_name


@pytest.mark.parametrize("maps", [False, True])
@pytest.mark.parametrize("depth", [MAX_REQUEST_DEPTH - 1, 990, 1023, 1100, 5000])
def test_deep_requests_are_bad_requests_before_decoding(depth, maps):
    # A status whose name was nested ~990 deep decoded, then repr() of it raised
    # RecursionError in validation: an 'internal' reply.
    with pytest.raises(ProtocolError) as info:
        decode_request(_status_with_name(_deep(depth, maps)))
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert f"nested more than {MAX_REQUEST_DEPTH} levels" in info.value.message


def test_nesting_up_to_the_bound_decodes():
    request = decode_request(_status_with_name(_deep(MAX_REQUEST_DEPTH - 3)))
    assert isinstance(request.args["name"], list)
    check_request_shape(msgpack.packb([[[]] * 5, [[[[1]]]], {"a": [{"b": 1}]}]))


@pytest.mark.parametrize(
    "value", [msgpack.ExtType(5, b"xx"), msgpack.Timestamp(0, 1), msgpack.ExtType(1, b"e" * 70_000)]
)
def test_extension_types_are_bad_requests(value):
    frame = msgpack.packb({"v": 1, "id": 1, "cmd": "status", "args": {"name": value}})
    with pytest.raises(ProtocolError, match="extension type") as info:
        decode_request(frame)
    assert info.value.code is ErrorCode.BAD_REQUEST


def test_too_many_values_are_a_bad_request_but_the_largest_real_request_is_not():
    hostile = msgpack.packb({"v": 1, "id": 1, "cmd": "list", "args": {"x": [None] * 40_000}})
    with pytest.raises(ProtocolError, match=f"more than {MAX_REQUEST_ITEMS} values"):
        decode_request(hostile)
    schema = {f"p{i}": {"type": "integer", "minimum": i} for i in range(3000)}  # 9,000+ values
    biggest = {
        "name": "f",
        "wasm": b"\0asm" * 1000,
        "inputs": [f"t{i}" for i in range(100)],
        "config": {f"k{i}": "v" for i in range(1024)},
        "options": {"json_schema": schema},
    }
    assert decode_request(encode_request(1, "create", biggest)).args == biggest


def test_the_shape_check_stops_at_the_bound_whatever_the_frame_holds():
    # Claims of 2**32-1 entries, or a truncated frame, cost nothing: decoding names the error.
    check_request_shape(b"\xdd\xff\xff\xff\xff" + b"\xc0" * 10)
    check_request_shape(b"\x92\x91")
    with pytest.raises(ProtocolError):
        decode_request(b"\x84\xa1v\x01\xdd\xff\xff\xff\xff")


def test_error_messages_are_one_bounded_line():
    reply = decode_reply(encode_error(1, ErrorCode.INVALID_ARGUMENT, "a\nb" + "x" * 100_000))
    assert "\n" not in reply.error_message
    assert len(reply.error_message) <= MAX_ERROR_MESSAGE
    assert reply.error_message.startswith("a b") and "characters cut" in reply.error_message


def test_a_deep_version_is_named_shortly():
    frame = msgpack.packb({"v": [[["x" * 10_000]]], "id": 1, "cmd": "ping", "args": {}})
    with pytest.raises(ProtocolError) as info:
        decode_request(frame)
    assert info.value.code is ErrorCode.VERSION_MISMATCH and len(info.value.message) < 200


# --- replies reach REQ clients: the delimiter goes back, with the request's id ----------------


@pytest.mark.parametrize(
    ("frames", "envelope"),
    [
        ([b"", b"req"], [b""]),  # REQ
        ([b"", b"a", b"req"], [b""]),  # REQ, multi-frame
        ([b"req"], []),  # DEALER
        ([b"a", b"b", b"req"], []),  # DEALER, multi-frame
        ([b""], []),  # an empty request, not a delimiter
    ],
)
def test_reply_envelope_keeps_the_req_delimiter(frames, envelope):
    assert reply_envelope(frames[:1], len(frames)) == envelope


@pytest.fixture
def server(tmp_path):
    def broken(args):
        raise RecursionError("maximum recursion depth exceeded")

    ctx = zmq.Context()
    endpoint = f"ipc://{tmp_path / 'ctl.sock'}"
    handlers = {"ping": lambda args: {"pong": True}, "info": broken}
    srv = ControlServer(ctx, endpoint, handlers, validator=lambda cmd, args: None)
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    yield srv, req
    req.close()
    srv.close()
    ctx.term()


def _answer(srv: ControlServer, req: zmq.Socket, parts: list[bytes]):
    req.send_multipart(parts)
    deadline = time.monotonic() + 5
    while not req.poll(10):
        srv.handle_readable()
        assert time.monotonic() < deadline, "the REQ client got no reply it could read"
    return decode_reply(req.recv())


@pytest.mark.parametrize("parts", [2, 3])
def test_a_req_client_gets_the_multi_frame_error(server, parts):
    srv, req = server
    reply = _answer(srv, req, [encode_request(41, "ping")] * parts)
    assert reply.error_code == "bad_request" and "one frame" in reply.error_message
    assert reply.id == 41


def test_a_req_client_gets_an_internal_error_with_its_id(server):
    srv, req = server
    reply = _answer(srv, req, [encode_request(42, "info")])
    assert (reply.error_code, reply.id) == ("internal", 42)
    assert _answer(srv, req, [encode_request(43, "ping")]).data == {"pong": True}


def test_a_failure_outside_the_handler_reaches_the_req_client(server, monkeypatch):
    srv, req = server

    def crash(frame):
        raise RecursionError("while building the reply")

    monkeypatch.setattr("fsd.control_server.decode_request", crash)
    reply = _answer(srv, req, [encode_request(44, "ping")])
    assert reply.error_code == "internal" and "RecursionError" in reply.error_message
