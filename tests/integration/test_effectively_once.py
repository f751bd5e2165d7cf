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

from tests.helpers import Fsd, unique, wait_for
from tests.slow_guest import write_slow_echo
from tests.streams import OutputCollector, report, send

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
