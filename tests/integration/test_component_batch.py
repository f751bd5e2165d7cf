"""Lane 3's batch entry point on the real platform: probe components through fsd and the broker.

The probe (tests/component_probe) is built from source with componentize-py
and componentize-js: world ``batch-processor`` (``process-batch``) and, for
Python, world ``processor`` (``process`` only, as components built before the
batch entry point). A burst of inputs reaches the replica in receive batches of
many messages, so the batch path runs; the probe's records say which entry
point ran each input. A first burst has only good inputs (they go through
``process-batch``); a second one has inputs that fail, each its own way (the
batch calls that hold them are re-run one input per ``process`` call).
"""

from __future__ import annotations

import json

import pulsar
import pytest

from tests.component_probe import probe_components
from tests.helpers import Fsd, unique
from tests.streams import Reader, client

pytestmark = pytest.mark.integration

NS = "persistent://public/default/"
COUNT = 40  # inputs in all; the first burst is the first half
# By position: these inputs (all in the second burst) fail, each its own way (app.py).
BAD = {30: (b"fail", "error"), 25: (b"loop", "timeout")}
PY_BAD = {**BAD, 37: (b"abort", "trap")}


def _burst(url: str, topic: str, bad: dict[int, tuple[bytes, str]], inputs: range) -> None:
    """``inputs`` sent asynchronously (one burst), each with its own key, property, time."""
    c = client(url)
    try:
        producer = c.create_producer(topic, batching_enabled=True, batching_max_messages=COUNT)
        for i in inputs:
            payload = bad[i][0] if i in bad else f"m{i}".encode()
            producer.send_async(
                payload, None, partition_key=f"k{i}", properties={"p": f"v{i}"},
                event_timestamp=100 + i,
            )  # fmt: skip
        producer.flush()
        producer.close()
    finally:
        c.close()


def _run(fsd: Fsd, url: str, wasm: str, bad: dict[int, tuple[bytes, str]]):
    """Create the function, send the burst; its outputs and dead letters."""
    name, inp, out = unique("probe"), unique("in"), unique("out")
    outputs, dlq = Reader(url, out), Reader(url, f"{NS}{inp}-{name}-DLQ")
    try:
        created = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out,
                          "--timeout-ms", "300", "--max-retries", "1",
                          "--retry-delay-ms", "200")  # fmt: skip
        assert created.returncode == 0, created.stderr
        fsd.wait_running(name, 1)
        _burst(url, inp, bad, range(COUNT // 2))
        outputs.wait(COUNT // 2, timeout=120)
        _burst(url, inp, bad, range(COUNT // 2, COUNT))
        got = outputs.wait(COUNT - len(bad), timeout=120)
        dead = dlq.wait(len(bad), timeout=120)
        assert fsd.ctl("delete", "-n", name).returncode == 0
        return got, dead
    finally:
        outputs.close()
        dlq.close()


def _check(got: list[pulsar.Message], dead: list[pulsar.Message], bad) -> list[bool]:
    """Every good input's record and metadata are its own; every bad one dead-lettered
    with its kind. Returns, per input of the first burst, whether process-batch ran it."""
    by_input = {}
    for msg in got:
        seen = json.loads(msg.data())
        i = int(seen["in"][1:])
        # What the function read was this input's metadata ...
        assert (seen["key"], seen["p"], seen["t"]) == (f"k{i}", f"v{i}", 100 + i), seen
        # ... and what it set went to this input's output records.
        assert msg.partition_key() == f"key-m{i}", (i, msg.partition_key())
        assert msg.properties()["from"] == f"m{i}", (i, msg.properties())
        assert msg.event_timestamp() == 1000 + i, (i, msg.event_timestamp())
        by_input[i] = seen
    assert sorted(by_input) == [i for i in range(COUNT) if i not in bad]
    # State: each good input counted once, whatever was re-run (failed calls keep no writes).
    assert sorted(s["count"] for s in by_input.values()) == list(range(1, COUNT - len(bad) + 1))
    kinds = {m.data(): m.properties()["fs-error-kind"] for m in dead}
    assert kinds == {payload: kind for payload, kind in bad.values()}, kinds
    for msg in dead:
        assert msg.properties()["fs-attempts"] == "2", msg.properties()  # 1 retry, then DLQ
    return [by_input[i]["batched"] for i in range(COUNT // 2)]


@pytest.fixture(scope="module")
def probes():
    return {name: str(path) for name, path in probe_components().items()}


@pytest.mark.parametrize(("probe", "bad"), [("probe-py-batch", PY_BAD), ("probe-js-batch", BAD)])
def test_batch_path_isolates_failures_and_keeps_metadata_per_input(
    fsd: Fsd, pulsar_url: str, probes, probe, bad
):
    got, dead = _run(fsd, pulsar_url, probes[probe], bad)
    batched = _check(got, dead, bad)
    # The first burst arrived in receive batches: most went through process-batch.
    assert sum(batched) >= len(batched) // 2, batched


def test_a_component_with_only_process_still_works(fsd: Fsd, pulsar_url: str, probes):
    got, dead = _run(fsd, pulsar_url, probes["probe-py-single"], PY_BAD)
    assert not any(_check(got, dead, PY_BAD))
