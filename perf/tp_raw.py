"""The raw pass-through ceiling: a plain pulsar-client loop in its own process.

fsworker's loop as it was before it pipelined its confirmations: the same
client, consumer and producer settings and the same batch shape (receive one,
take up to 1000 queued, ``send_async`` each, ``flush``, then acknowledge each),
no wasm, no fsd, no per-message metadata. It stays this naive on purpose: it is
the "hand-written client loop" the replica is measured against.

With the job ``basic`` the same loop does what examples/basic does, in Python
(parse the JSON person, money + 1, serialize): the hand-written loop issue 15
was filed against, the one a user would write instead of a function.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

from perf.harness import BenchError

# examples/basic's job in plain Python, as a user would write it (no checks: the records are good).
BASIC_JOB = r"""
loads, dumps = json.loads, json.dumps
def basic(data):
    person = loads(data)
    expected = person.get("expected")
    return dumps({"name": person["name"], "money": person["money"] + 1,
                  "expected": 0 if expected is None else expected},
                 separators=(",", ":"), ensure_ascii=False).encode()
"""

# fsworker's loop without wasm and without fsd: the same client, consumer and producer
# settings (fsworker/pulsar_io.py) and the same batch shape (fsworker/loop.py).
PASS_THROUGH = (
    r"""
import json, os, signal, sys, time
import pulsar
url, topic, subscription, output, job = sys.argv[1:6]
"""
    + BASIC_JOB
    + r"""stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
client = pulsar.Client(url, operation_timeout_seconds=10, connection_timeout_ms=5000,
                       logger=pulsar.FileLogger(pulsar.LoggerLevel.Error, os.devnull))
consumer = client.subscribe(topic, subscription, consumer_type=pulsar.ConsumerType.Shared,
                            initial_position=pulsar.InitialPosition.Earliest,
                            receiver_queue_size=1000)
producer = client.create_producer(output, batching_enabled=True, batching_max_publish_delay_ms=1,
                                  batching_max_messages=1000, block_if_queue_full=True,
                                  max_pending_messages=10000)
print("ready", flush=True)
receive, send, ack = consumer.receive, producer.send_async, consumer.acknowledge
received = batches = 0
first = last = None
flushing = 0.0
while not stop:
    try:
        batch = [receive(100)]
    except pulsar.Timeout:
        continue
    if first is None:
        first = time.monotonic()
    while len(batch) < 1000:
        try:
            batch.append(receive(0))
        except pulsar.Timeout:
            break
    if job == "basic":
        for msg in batch:
            send(basic(msg.data()), None)
    else:
        for msg in batch:
            send(msg.data(), None)
    t = time.monotonic()
    producer.flush()
    flushing += time.monotonic() - t
    for msg in batch:
        ack(msg)
    last = time.monotonic()
    received += len(batch)
    batches += 1
print(json.dumps({"received": received, "batches": batches, "first": first, "last": last,
                  "flushing": flushing}), flush=True)
consumer.close()
producer.close()
client.close()
os._exit(0)
"""
)


class PassThrough:
    """The raw pass-through loop in its own process (``job``: "pass" or "basic")."""

    def __init__(self, url: str, topic: str, output: str, job: str = "pass") -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PASS_THROUGH, url, topic, "raw", output, job],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            _out, err = self.proc.communicate(timeout=30)
            raise BenchError(f"the pass-through process did not start: {err.strip()[-800:]}")
        self.ready = time.monotonic()

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"the pass-through process exited with {self.proc.returncode}")

    def stop(self) -> dict[str, Any]:
        """SIGTERM (it finishes the batch in hand), then its own counters."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise BenchError("the pass-through process did not stop within 30 s") from None
        if self.proc.returncode != 0:
            raise BenchError(f"the pass-through process failed: {err.strip()[-800:]}")
        return json.loads(out.strip().splitlines()[-1])
