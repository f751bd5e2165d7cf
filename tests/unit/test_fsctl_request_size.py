"""fsctl refuses a request fsd would drop unanswered, instead of waiting for a timeout."""

from __future__ import annotations

import time

import pytest

from fscommon.protocol import MAX_REQUEST_BYTES
from fsctl.client import CommandFailed, call


def test_request_over_the_limit_fails_at_once():
    started = time.monotonic()
    with pytest.raises(CommandFailed) as info:
        call("tcp://127.0.0.1:9", "create", {"wasm": b"\0" * MAX_REQUEST_BYTES}, timeout=30)
    assert info.value.code == "too_large"
    assert "max_request_bytes" in info.value.message
    assert time.monotonic() - started < 10
