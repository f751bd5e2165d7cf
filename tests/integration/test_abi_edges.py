"""ABI edge cases docs/abi.md promises, on a real broker: an empty message reaches the guest."""

from __future__ import annotations

import pytest

from tests import wasm_fixtures as fx
from tests.helpers import Fsd, unique
from tests.streams import Reader, send

pytestmark = pytest.mark.integration

# Echoes its input; an empty input (len 0) gives the 5 bytes "empty" instead.
SAYS_EMPTY = """
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "empty")
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.eqz (local.get $len)) (then (return (i64.or (i64.shl (i64.const 16) (i64.const 32))
                                                         (i64.const 5)))))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))
"""


def test_an_empty_message_reaches_the_guest(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("empty"), unique("in"), unique("out")
    wasm = str(fx.write(fsd.workdir, "says_empty", SAYS_EMPTY))
    result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out)
    assert result.returncode == 0, result.stderr
    fsd.wait_running(name, 1)
    outputs = Reader(pulsar_url, out)
    send(pulsar_url, inp, [b"", b"x"])
    assert [m.data() for m in outputs.wait(2)] == [b"empty", b"x"]
    outputs.close()
