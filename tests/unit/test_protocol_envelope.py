"""The request envelope is strict: exactly v/id/cmd/args, and v is the integer 1."""

from __future__ import annotations

import msgpack
import pytest

from fscommon.protocol import ErrorCode, ProtocolError, decode_request


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


def test_too_deep_msgpack_is_a_clear_error():
    with pytest.raises(ProtocolError, match=r"not valid msgpack \(StackError"):
        decode_request(b"\x91" * 5000 + b"\xc0")
