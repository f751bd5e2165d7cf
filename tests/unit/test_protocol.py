import msgpack
import pytest

from fscommon.protocol import (
    MAX_REQUEST_BYTES,
    PROTOCOL_VERSION,
    ErrorCode,
    EventKind,
    ProtocolError,
    decode_event,
    decode_reply,
    decode_request,
    encode_error,
    encode_event,
    encode_ok,
    encode_request,
)


def test_request_roundtrip():
    req = decode_request(encode_request(7, "create", {"name": "x", "wasm": b"\0asm"}))
    assert (req.id, req.cmd, req.args) == (7, "create", {"name": "x", "wasm": b"\0asm"})


def test_replies_roundtrip():
    ok = decode_reply(encode_ok(3, {"a": [1, 2]}))
    assert ok.ok and ok.id == 3 and ok.data == {"a": [1, 2]}
    err = decode_reply(encode_error(4, ErrorCode.NOT_FOUND, "no such function"))
    assert not err.ok and err.error_code == "not_found" and err.error_message == "no such function"


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1garbage",
        msgpack.packb([1, 2, 3]),
        msgpack.packb({"v": PROTOCOL_VERSION, "id": "1", "cmd": "ping"}),
        msgpack.packb({"v": PROTOCOL_VERSION, "id": True, "cmd": "ping"}),
        msgpack.packb({"v": PROTOCOL_VERSION, "id": 1, "cmd": ""}),
        msgpack.packb({"v": PROTOCOL_VERSION, "id": 1, "cmd": "ping", "args": [1]}),
        msgpack.packb({"v": PROTOCOL_VERSION, "id": 1, "cmd": 5}),
        msgpack.packb({1: 2}),
    ],
)
def test_malformed_requests_raise_protocol_error(frame):
    with pytest.raises(ProtocolError) as info:
        decode_request(frame)
    assert info.value.code in (ErrorCode.BAD_REQUEST, ErrorCode.VERSION_MISMATCH)


def test_version_mismatch_is_named():
    frame = msgpack.packb({"v": 99, "id": 1, "cmd": "ping"})
    with pytest.raises(ProtocolError) as info:
        decode_request(frame)
    assert info.value.code is ErrorCode.VERSION_MISMATCH
    assert "99" in info.value.message


def test_oversized_request_is_refused_before_decoding():
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_request(b"\0" * (MAX_REQUEST_BYTES + 1))


def test_events_roundtrip_and_validate():
    ev = decode_event(encode_event(EventKind.HEARTBEAT, "fn", 2, 1234, processed=5))
    assert ev["kind"] is EventKind.HEARTBEAT and ev["processed"] == 5 and ev["replica"] == 2
    with pytest.raises(ProtocolError, match="unknown event kind"):
        decode_event(msgpack.packb({"v": PROTOCOL_VERSION, "kind": "boom"}))
    with pytest.raises(ProtocolError, match="replica"):
        decode_event(
            msgpack.packb(
                {"v": PROTOCOL_VERSION, "kind": "ready", "function": "f", "replica": "0", "pid": 1}
            )
        )
