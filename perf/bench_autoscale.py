"""Autoscaling benchmark: drain time of a burst, fixed vs autoscaled, beside the raw ceiling.

Same broker, same run, one path after another:

1. raw pass-through: a plain pulsar-client loop (receive, send, flush, ack) with
   no work per message: the most the broker and client move here;
2. Function Stream, fixed 1 replica;
3. Function Stream, fixed 4 replicas (what autoscaling could at best reach);
4. Function Stream, autoscaled 1..4 with fsd's defaults (decisions every 5 s,
   target lag 10 s, scale-down delay 60 s).

The function is tests/slow_guest.py: it waits 1 ms per message without using CPU,
like a function that calls a slow service, so replicas add capacity even on a
two-core machine. Each FS path creates a fresh function, waits for it to run
idle, then produces the burst as fast as the producer can; the drain time runs
from the first message sent to the last distinct output received. For the
autoscaled path the controller's notices ('fsctl events') give the reaction
time (burst start to the first scale-up), the time to reach the maximum and,
unless --no-scale-down, the time back to one replica after the drain.

    python perf/bench_autoscale.py                      # starts a broker; ~15 min on 2 CPUs
    python perf/bench_autoscale.py --messages 50000     # shorter
    python perf/bench_autoscale.py --pulsar-url pulsar://127.0.0.1:6650 \
        --admin-url http://127.0.0.1:8080               # an existing broker
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import pulsar
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf.harness import BenchError, interrupt, machine_info, print_results, progress
from tests.helpers import Fsd, free_port, unique
from tests.slow_guest import write_slow_echo
from tests.streams import OutputCollector, StreamProducer, client

AUTO = ["--min-replicas", "1", "--max-replicas", "4"]


class ScaleWatch(threading.Thread):
    """Records the time of every scale notice fsd publishes for one function."""

    def __init__(self, endpoint: str, function: str) -> None:
        super().__init__(daemon=True)
        self.sock = zmq.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, function.encode())
        self.sock.setsockopt(zmq.RCVTIMEO, 200)
        self.sock.connect(endpoint)
        self.moves: list[tuple[float, int, int, str]] = []  # monotonic, old, new, reason
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                _topic, frame = self.sock.recv_multipart()
            except zmq.Again:
                continue
            notice = msgpack.unpackb(frame, raw=False)
            if notice.get("kind") == "scale" and notice.get("action") in ("up", "down"):
                self.moves.append(
                    (time.monotonic(), notice["old"], notice["new"], notice["reason"])
                )

    def stop(self) -> None:
        self._done.set()
        self.join(5)
        self.sock.close()


def raw_pass_through(url: str, messages: int) -> dict[str, Any]:
    """Drain a burst through a hand-written loop; the ceiling for this broker and client."""
    inp, out = unique("as-raw-in"), unique("as-raw-out")
    c = client(url)
    consumer = c.subscribe(inp, "raw", consumer_type=pulsar.ConsumerType.Shared)
    producer = c.create_producer(out, batching_enabled=True, block_if_queue_full=True)
    collector = OutputCollector(url, out)
    done = threading.Event()

    def loop() -> None:
        pending: list[pulsar.Message] = []
        while not done.is_set():
            try:
                pending.append(consumer.receive(50))
                if len(pending) < 500:
                    continue
            except pulsar.Timeout:
                pass
            for msg in pending:
                producer.send_async(msg.data(), None)
            producer.flush()
            for msg in pending:
                consumer.acknowledge(msg)
            pending = []

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        drained = burst(url, inp, collector, messages, "raw pass-through")[1]
    finally:
        done.set()
        worker.join(5)
        collector.close()
        c.close()
    return {"drain_s": drained, "msg_per_s": messages / drained}


def burst(
    url: str, topic: str, collector: OutputCollector, messages: int, what: str
) -> tuple[float, float]:
    """Produce ``messages`` as fast as possible and wait for all of them to come out:
    (monotonic start, seconds to drain)."""
    started = time.monotonic()
    producer = StreamProducer(url, topic, messages, rate=1e9)
    producer.start()
    seen = collector.collect_until(messages, timeout=3600, quiet=0)
    drained = time.monotonic() - started
    producer.finish()
    if len(seen) < messages:
        raise BenchError(f"{what}: {len(seen)} of {messages} came out")
    return started, drained


def through_fs(fsd: Fsd, url: str, module: Path, messages: int, flags: list[str],
               scale_down: bool) -> dict[str, Any]:  # fmt: skip
    """Create a function, let it idle, produce the burst, time the drain and the notices."""
    name, inp, out = unique("as-fn"), unique("as-in"), unique("as-out")
    result = fsd.ctl("create", "-n", name, "-a", str(module), "-i", inp, "-o", out, *flags)
    if result.returncode != 0:
        raise BenchError(f"fsctl create failed: {result.stderr.strip()}")
    watch = ScaleWatch(fsd.ctl_json("info")["transitions_endpoint"], name)
    watch.start()
    collector = OutputCollector(url, out)
    try:
        started, drained = burst(url, inp, collector, messages, name)
        back = None
        if scale_down and "--min-replicas" in flags:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline and fsd.status(name)["replicas_wanted"] != 1:
                time.sleep(1)
            back = time.monotonic() - started - drained
    finally:
        collector.close()
        watch.stop()
        fsd.ctl("delete", "-n", name)
    ups = [m for m in watch.moves if m[2] > m[1]]
    top = max((m[2] for m in watch.moves), default=None)
    return {
        "drain_s": drained,
        "msg_per_s": messages / drained,
        "first_scale_up_s": ups[0][0] - started if ups else None,
        "max_reached_s": next((m[0] - started for m in ups if m[2] == top), None),
        "max_replicas_seen": top,
        "back_to_min_after_drain_s": back,
        "moves": [(round(t - started, 1), old, new, reason) for t, old, new, reason in watch.moves],
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    broker = None
    url, admin = args.pulsar_url, args.admin_url
    broker_started = time.monotonic()
    if not url:
        from fsd.broker import EmbeddedPulsar

        progress("starting a Pulsar standalone ...")
        broker = EmbeddedPulsar(data_dir=tmp / "pulsar", broker_port=free_port(),
                                web_port=free_port())  # fmt: skip
        broker.start()
        broker.wait_ready(timeout=300)
        url, admin = broker.url, broker.admin_url
    os.environ["FS_TEST_PULSAR_ADMIN_URL"] = admin or ""
    module = write_slow_echo(tmp, args.sleep_ms)
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "messages": args.messages,
        "broker_start_s": time.monotonic() - broker_started if broker is not None else 0.0,
        "paths": {},
    }
    fsd = Fsd(tmp / "fsd", url)
    (tmp / "fsd").mkdir()
    try:
        progress("raw pass-through ...")
        doc["paths"]["raw pass-through"] = raw_pass_through(url, args.messages)
        fsd.start()
        for label, flags in (
            ("fixed 1 replica", ["-r", "1"]),
            ("fixed 4 replicas", ["-r", "4"]),
            ("autoscaled 1..4", AUTO),
        ):
            progress(f"{label} ...")
            doc["paths"][label] = through_fs(
                fsd, url, module, args.messages, flags, not args.no_scale_down
            )
    finally:
        if fsd.proc is not None and fsd.proc.poll() is None:
            fsd.stop()
        if broker is not None:
            broker.stop()
    return doc


def report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(f"{doc['messages']:,} messages in one burst; {m['nproc']} CPUs ({m['cpu']}), "
          f"Pulsar {m['pulsar']}, load at start {m['loadavg_start']}")  # fmt: skip
    ceiling = doc["paths"]["raw pass-through"]["msg_per_s"]
    print(f"{'path':<20} {'drain s':>9} {'msg/s':>9} {'of raw':>7}")
    for label, r in doc["paths"].items():
        print(f"{label:<20} {r['drain_s']:9.1f} {r['msg_per_s']:9,.0f} "
              f"{r['msg_per_s'] / ceiling:7.1%}")  # fmt: skip
    auto = doc["paths"]["autoscaled 1..4"]
    for key in ("first_scale_up_s", "max_reached_s", "back_to_min_after_drain_s"):
        value = auto.get(key)
        print(f"autoscaled: {key.replace('_', ' ')}: {'-' if value is None else f'{value:.1f}'}")
    for t, old, new, reason in auto["moves"]:
        print(f"  +{t:6.1f} s  {old} -> {new}: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--sleep-ms", type=int, default=1, help="the guest's wait per message")
    parser.add_argument("--pulsar-url", help="use this broker instead of starting one")
    parser.add_argument("--admin-url", help="its admin URL (with --pulsar-url)")
    parser.add_argument("--no-scale-down", action="store_true",
                        help="do not wait for the autoscaled function to return to 1")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-as-", dir="/tmp"))
    started = time.monotonic()
    try:
        doc = run(args, tmp)
    except BenchError as exc:
        print(f"bench_autoscale: {exc} (logs kept in {tmp})", file=sys.stderr)
        sys.exit(1)
    doc["elapsed_s"] = time.monotonic() - started
    print_results(doc, args.json, report)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
