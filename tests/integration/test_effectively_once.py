"""effectively-once when a worker dies with a batch in flight (found by perf/chaos.py).

The broker keeps an output only if its sequence id is above every one it kept
from that producer, and the ids follow the inputs' positions: so the worker must
publish in input order. A worker that died mid-batch leaves those messages as
suspects in the attempt ledger; its successor takes them again together with
whatever arrived meanwhile, and must call the suspects, which come first on the
topic, before the newer messages, or the broker drops their outputs as
duplicates and they are lost.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests import wasm_fixtures as fx
from tests.helpers import Fsd, unique, wait_for
from tests.slow_guest import write_slow_echo
from tests.streams import OutputCollector, Reader, report, send

pytestmark = pytest.mark.integration

PER_MESSAGE_MS = 100  # the guest's time per message: a 30-message batch is 3 s in the guest
FIRST, SECOND = 30, 30


def _records(first: int, count: int) -> list[bytes]:
    return [b'{"name":"m-%d","money":%d}' % (i, i) for i in range(first, first + count)]


def test_a_batch_in_flight_when_the_worker_dies_is_not_lost(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("eo-kill"), unique("in"), unique("out")
    wasm = str(write_slow_echo(fsd.workdir, PER_MESSAGE_MS))
    collector = OutputCollector(pulsar_url, out)
    send(pulsar_url, inp, _records(0, FIRST))
    # --timeout-ms: the worker tells fsd before each guest call (a heartbeat with the batch
    # counted as received), which is how the test knows the batch is inside the guest.
    result = fsd.ctl(
        "create", "-n", name, "-a", wasm, "-i", inp, "-o", out, "--guarantee",
        "effectively-once", "--ordering", "strict", "--timeout-ms", "5000", "--no-wait",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    in_guest = wait_for(
        lambda: (
            (r := fsd.replicas(name)[0])["state"] == "RUNNING"
            and r.get("received", 0) >= 1
            and r.get("processed", 0) == 0
            and r
        ),
        60,
        "the first batch inside the guest",
        interval=0.05,
    )
    os.kill(in_guest["pid"], signal.SIGKILL)
    # Arrives while the worker is down: its successor takes it with the suspects.
    send(pulsar_url, inp, _records(FIRST, SECOND))
    missing, duplicates = report(
        collector.collect_until(FIRST + SECOND, 90, quiet=2.0), FIRST + SECOND
    )
    collector.close()
    assert fsd.replicas(name)[0]["restarts"] >= 1, "the kill did not happen while it ran"
    assert missing == [], f"{len(missing)} lost: {missing[:10]}"
    assert duplicates == 0


# Echoes its input, except that it rejects (error code -1, no trap: the instance and its
# global stay) the first input starting with "F" it sees: a failure that a retry cures.
FAILS_ONCE = """
(module
  (memory (export "memory") 1)
  (global $failed (mut i32) (i32.const 0))
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "process") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.and (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 70))
                 (i32.eqz (global.get $failed)))
      (then (global.set $failed (i32.const 1)) (return (i64.const -1))))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
"""


def test_a_message_that_succeeds_on_its_retry_is_not_lost(fsd: Fsd, pulsar_url: str):
    # Handed back for a later redelivery, it would come back after the messages behind it
    # were published, and the broker would drop its output (a lower sequence id).
    name, inp, out = unique("eo-retry"), unique("in"), unique("out")
    payloads = [b"m-%d" % i for i in range(10)] + [b"F-once"] + [b"m-%d" % i for i in range(10, 20)]
    send(pulsar_url, inp, payloads)
    outputs = Reader(pulsar_url, out)
    wasm = str(fx.write(fsd.workdir, name, FAILS_ONCE))
    result = fsd.ctl(
        "create", "-n", name, "-a", wasm, "-i", inp, "-o", out, "--guarantee",
        "effectively-once", "--ordering", "strict", "--retry-delay-ms", "100",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    try:
        got = outputs.wait(len(payloads), timeout=60)
        got += outputs.more_within(1.0)
        assert [m.data() for m in got] == payloads  # all of them, once, in input order
        replica = fsd.replicas(name)[0]
        assert (replica["retried"], replica["dead_lettered"]) == (1, 0), replica
    finally:
        outputs.close()


def test_effectively_once_refuses_more_than_one_replica(fsd: Fsd):
    name = unique("eo-one")
    wasm = str(fx.write(fsd.workdir, name, fx.ECHO))
    base = ["-n", name, "-a", wasm, "-i", unique("in"), "-o", unique("out"), "--guarantee",
            "effectively-once", "--ordering", "strict"]  # fmt: skip
    refused = fsd.ctl("create", *base, "-r", "2")
    assert refused.returncode != 0 and "runs one replica" in refused.stderr, refused
    assert fsd.ctl("create", *base).returncode == 0
    scaled = fsd.ctl("scale", "-n", name, "-r", "2")
    assert scaled.returncode != 0 and "runs one replica" in scaled.stderr, scaled
    bounds = fsd.ctl("update", "-n", name, "--min-replicas", "1", "--max-replicas", "3")
    assert bounds.returncode != 0 and "runs one replica" in bounds.stderr, bounds
    assert len(fsd.replicas(name)) == 1
