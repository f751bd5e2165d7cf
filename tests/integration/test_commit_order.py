"""Cumulative acknowledgements on a Failover subscription must never take a failed message
with them (fsworker/commit.py), and a failing message is dead-lettered on Failover too
(fsworker/redeliveries.py).

With ``--ordering strict`` the worker acknowledges a batch cumulatively, except
while an earlier message of the topic waits for its redelivery. A cumulative ack
over such a message would acknowledge it, its redelivery would never come, and
it would neither come out nor reach the dead-letter topic. Real fsd, worker and
broker; the failing message sits in the middle of a stream, so later batches
are committed while it waits.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests import wasm_fixtures as fx
from tests.helpers import Fsd, unique, wait_for
from tests.streams import Reader, client

pytestmark = pytest.mark.integration

NS = "persistent://public/default/"


def _backlog(admin_url: str, topic: str) -> int:
    url = f"{admin_url}/admin/v2/persistent/public/default/{topic}/stats"
    with urllib.request.urlopen(url, timeout=10) as resp:
        subs = json.loads(resp.read())["subscriptions"]
    return sum(s["msgBacklog"] for s in subs.values())


@pytest.mark.parametrize("ordering", ["strict", "none"])
def test_failover_never_acknowledges_a_message_waiting_for_redelivery(
    fsd: Fsd, pulsar_url: str, ordering: str
) -> None:
    """strict: cumulative acks around the failure, and a failing message still reaches the
    dead-letter topic after --max-retries (the broker counts no redeliveries on Failover);
    none (Shared): the same stream, each message acknowledged on its own."""
    import os

    admin_url = os.environ.get("FS_TEST_PULSAR_ADMIN_URL")
    name, inp, out = unique("strict"), unique("in"), unique("out")
    outputs, dlq = Reader(pulsar_url, out), Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
    wasm = str(fx.write(fsd.workdir, "batch-echo", fx.BATCH_ECHO))
    flags = ["--ordering", ordering, "--max-retries", "2", "--retry-delay-ms", "300"]
    result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out, *flags)
    assert result.returncode == 0, result.stderr
    fsd.wait_running(name, 1)
    good = [f"good-{i:04d}".encode() for i in range(600)]
    c = client(pulsar_url)
    try:
        producer = c.create_producer(inp, batching_enabled=True, batching_max_publish_delay_ms=1)
        for i, payload in enumerate(good):
            if i == 200:
                producer.send_async(b"E fails every time", None)
            producer.send_async(payload, None)
            if i % 50 == 49:
                producer.flush()
                time.sleep(0.05)  # several batches while the failed message waits
        producer.flush()
        producer.close()
    finally:
        c.close()
    dead = dlq.wait(1, timeout=60)[0]
    assert dead.data() == b"E fails every time"
    assert dead.properties()["fs-attempts"] == "3"
    wait_for(
        lambda: {m.data() for m in outputs.more_within(0.3) + outputs.messages} >= set(good),
        60,
        "every good message out",
    )
    replica = wait_for(
        lambda: (r := fsd.replicas(name)[0])["dead_lettered"] == 1 and r, 10, "counters"
    )
    assert replica["retried"] == 2 and replica["restarts"] == 0
    if admin_url:
        # Everything acknowledged in the end, the dead-lettered message included.
        subscription_topic = inp
        wait_for(lambda: _backlog(admin_url, subscription_topic) == 0, 10, "no backlog")
    outputs.close()
    dlq.close()
