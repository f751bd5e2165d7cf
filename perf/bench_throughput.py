"""Data-path benchmark: broker limit, raw pass-through ceiling, Function Stream throughput, latency.

Starts one real Pulsar standalone (on free ports, data in a temp dir) and one fsd
against it, then measures, each figure next to a baseline from the same run on
the same broker:

1. the broker's own limit with pulsar-perf (100-byte messages): produce for a
   fixed time, then consume that backlog;
2. the raw at-least-once pass-through ceiling: a plain pulsar-client consumer ->
   producer loop in one separate process (no wasm), batched like fsworker
   (receive one, take up to 1000 queued, send_async each, flush, then ack);
3. Function Stream draining the same pre-filled backlog through a bytes echo
   function (100 B, to compare with 2. directly) and examples/basic (JSON
   records of about 40 B) at 1, 2 and 4 replicas;
4. examples/basic in every language (the committed examples/basic/<lang>/basic.wasm,
   1 replica) against the raw JSON ceiling of the same run;
5. end-to-end latency at a fixed 1,000 msg/s through the broker alone (one hop),
   the raw pass-through and 1 replica of examples/basic.

Throughput is counted on the output topic (the broker's ``msgInCounter``, polled
every 50 ms), so every path is timed the same way: until N outputs are on the
output topic. It never asserts timings: it exits 0 unless something failed to
work (then 1, keeping the broker data and fsd log and naming where).

    python perf/bench_throughput.py [--messages N] [--runs R] [--quick] [--json]
        [--only broker|throughput|languages|latency] [--broker-conf KEY=VALUE]
        [--no-pulsar-perf]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402
import pulsar  # noqa: E402
import wasmtime  # noqa: E402

from fscommon import logs  # noqa: E402
from fsctl.client import call  # noqa: E402
from fsd.broker import PULSAR_VERSION, EmbeddedPulsar, find_java  # noqa: E402
from perf.harness import (  # noqa: E402
    BenchError,
    interrupt,
    machine_info,
    print_results,
    progress,
    summary,
)
from tests.helpers import Fsd, free_port, unique  # noqa: E402
from tests.streams import client as pulsar_client  # noqa: E402
from tests.wasm_fixtures import BATCH_ECHO  # noqa: E402

BASIC_WASM = REPO / "examples" / "basic" / "c" / "basic.wasm"
PERF_PROVISION = REPO / "scripts" / "provision-pulsar-perf.sh"
POLL_S = 0.05  # output-count polling interval
STALL_S = 60.0  # no progress for this long: something is broken
LATENCY_RATE = 1000  # msg/s
LATENCY_WARMUP_S = 2.0
RAW = "raw pass-through"
DIRECT = "broker only"


class BenchPulsar(EmbeddedPulsar):
    """fsd's embedded standalone, plus extra standalone.conf lines (``--broker-conf``) to try
    broker settings with everything else unchanged (a later key overrides an earlier one)."""

    extra_conf: tuple[str, ...] = ()

    def _write_config(self) -> Path:
        conf = super()._write_config()
        if self.extra_conf:
            with conf.open("a") as fh:
                fh.write("\n".join(self.extra_conf) + "\n")
        return conf


# --- statistics ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# --- payloads -----------------------------------------------------------------------------


def echo_payload(i: int) -> bytes:
    """100 bytes; the first byte is not one the echo fixture treats specially (X, L, E, Z, T)."""
    return (b"p%09d" % i).ljust(100, b".")


def person_payload(i: int) -> bytes:
    """A record for examples/basic, about 40 bytes."""
    return b'{"name":"person-%08d","money":%d}' % (i, i)


PAYLOADS: dict[str, Callable[[int], bytes]] = {"100 B": echo_payload, "JSON": person_payload}


# --- broker helpers -----------------------------------------------------------------------


class Admin:
    """The few admin REST calls the benchmark needs."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _topic_url(self, topic: str) -> str:
        return f"{self.url}/admin/v2/persistent/public/default/{topic}"

    def counters(self, topic: str) -> tuple[int, int]:
        """(msgInCounter, msgOutCounter) of ``topic``; (0, 0) before it exists."""
        try:
            with urllib.request.urlopen(self._topic_url(topic) + "/stats", timeout=10) as resp:
                stats = json.loads(resp.read())
                return int(stats["msgInCounter"]), int(stats["msgOutCounter"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 0, 0
            raise BenchError(f"topic stats of {topic}: HTTP {exc.code}") from None
        except (OSError, ValueError, KeyError) as exc:
            raise BenchError(f"topic stats of {topic}: {exc}") from None

    def published(self, topic: str) -> int:
        """How many messages the broker has accepted on ``topic`` (0 before the first)."""
        return self.counters(topic)[0]

    def delete(self, *topics: str) -> None:
        """Delete topics (and their data), so the broker stays small over many runs."""
        for topic in topics:
            req = urllib.request.Request(self._topic_url(topic) + "?force=true", method="DELETE")
            with contextlib.suppress(OSError):  # already gone, or never created
                urllib.request.urlopen(req, timeout=30).close()


def prefill(client: pulsar.Client, topic: str, count: int, make: Callable[[int], bytes]) -> float:
    """Publish ``count`` messages as fast as the client goes; returns msg/s."""
    producer = client.create_producer(
        topic,
        batching_enabled=True,
        batching_max_publish_delay_ms=5,
        batching_max_messages=1000,
        block_if_queue_full=True,
        max_pending_messages=10000,
    )
    payloads = [make(i) for i in range(count)]
    started = time.monotonic()
    send = producer.send_async
    for payload in payloads:
        send(payload, None)
    producer.flush()
    elapsed = time.monotonic() - started
    producer.close()
    return count / elapsed


# --- CPU accounting -----------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float | None:
    """user + system CPU of these processes (None if one is gone)."""
    total = 0.0
    try:
        for pid in pids:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    except psutil.Error:
        return None
    return total


class CpuMark:
    """CPU counters at one moment: the measured processes, the broker, the whole machine."""

    def __init__(self, pids: list[int], broker_pid: int) -> None:
        self.pids = sorted(pids)
        self.procs = cpu_seconds(pids) if pids else None
        self.broker = cpu_seconds([broker_pid])
        t = psutil.cpu_times()
        self.idle = t.idle + getattr(t, "iowait", 0.0)
        self.total = sum(t)


def machine_busy(seconds: float = 2.0) -> float:
    """% of all CPUs busy over ``seconds``: what else runs on the machine (should be ~0)."""
    a = psutil.cpu_times()
    time.sleep(seconds)
    b = psutil.cpu_times()
    idle = (b.idle + getattr(b, "iowait", 0.0)) - (a.idle + getattr(a, "iowait", 0.0))
    total = sum(b) - sum(a)
    return max(0.0, 100 * (total - idle) / total) if total > 0 else 0.0


def wait_quiet(limit_pct: float = 15.0, max_wait: float = 60.0) -> float:
    """Wait up to ``max_wait`` s until other load has passed (this is a shared 2-CPU machine);
    returns the last busy % seen."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = machine_busy(0.5)
        if busy <= limit_pct or time.monotonic() >= deadline:
            return busy
        progress(f"    waiting for other load to pass ({busy:.0f} % of the CPUs busy) ...")
        time.sleep(2)


def crossing(samples: list[tuple[float, int]], target: float) -> float | None:
    """When a (time, count) series reached ``target``, interpolated between samples."""
    prev_t, prev_c = samples[0]
    for t, c in samples:
        if c >= target:
            if c == prev_c:
                return t
            return prev_t + (t - prev_t) * (target - prev_c) / (c - prev_c)
        prev_t, prev_c = t, c
    return None


# --- draining a backlog -------------------------------------------------------------------


class Drain:
    """Poll the output topic's count until N; interpolated times at 10 % / 90 %; CPU between."""

    def __init__(self, admin: Admin, topic: str, target: int, broker_pid: int) -> None:
        self.admin, self.topic, self.target, self.broker_pid = admin, topic, target, broker_pid
        self.samples: list[tuple[float, int]] = []
        self.marks: dict[str, tuple[float, int, CpuMark]] = {}

    def run(self, started: float, pids: Callable[[], list[int]], check: Callable[[], None]) -> None:
        """Poll until the target count; ``check`` raises if the thing measured died."""
        last_change, last = started, -1
        lo, hi = self.target // 10, self.target - self.target // 10
        while True:
            count = self.admin.published(self.topic)
            now = time.monotonic()
            self.samples.append((now, count))
            if count >= lo and "lo" not in self.marks:
                self.marks["lo"] = (now, count, CpuMark(pids(), self.broker_pid))
            if count >= hi and "hi" not in self.marks:
                self.marks["hi"] = (now, count, CpuMark(pids(), self.broker_pid))
            if count >= self.target:
                return
            if count != last:
                last, last_change = count, now
            elif now - last_change > STALL_S:
                raise BenchError(
                    f"{self.topic}: stuck at {count} of {self.target} outputs for {STALL_S:.0f}s"
                )
            check()
            time.sleep(POLL_S)

    def when(self, count: float) -> float:
        """The interpolated time the output count reached ``count``."""
        found = crossing(self.samples, count)
        return self.samples[-1][0] if found is None else found

    def results(self, started: float) -> dict[str, float | None]:
        n = self.target
        lo, hi = n // 10, n - n // 10
        t_lo, t_hi = self.when(lo), self.when(hi)
        first = next(t for t, c in self.samples if c > 0)
        out: dict[str, float | None] = {
            "msg/s (10-90 %)": (hi - lo) / (t_hi - t_lo) if t_hi > t_lo else None,
            "msg/s (start to N)": n / (self.when(n) - started),
            "start to first output (s)": first - started,
        }
        (_, ca, ma), (_, cb, mb) = self.marks["lo"], self.marks["hi"]
        done = cb - ca
        if ma.pids != mb.pids:  # a replica restarted in between: its CPU is not comparable
            ma.procs = mb.procs = None
        if done > 0:
            if ma.procs is not None and mb.procs is not None:
                out["CPU us/msg: measured processes"] = (mb.procs - ma.procs) / done * 1e6
            if ma.broker is not None and mb.broker is not None:
                out["CPU us/msg: broker"] = (mb.broker - ma.broker) / done * 1e6
            if mb.total > ma.total:
                busy = (mb.total - ma.total) - (mb.idle - ma.idle)
                out["machine CPU busy (%)"] = 100 * busy / (mb.total - ma.total)
                if None not in (ma.procs, mb.procs, ma.broker, mb.broker):
                    # Everything else: this script, fsd, and whatever else runs on the machine
                    # (in USER_HZ ticks, hence an approximation).
                    own = (mb.procs - ma.procs) + (mb.broker - ma.broker)  # type: ignore[operator]
                    out["CPU us/msg: everything else"] = max(0.0, busy - own) / done * 1e6
        return out


# --- the raw pass-through process ---------------------------------------------------------

# fsworker's loop without wasm and without fsd: the same client, consumer and producer
# settings (fsworker/pulsar_io.py) and the same batch shape (fsworker/loop.py).
PASS_THROUGH = r"""
import json, os, signal, sys, time
import pulsar
url, topic, subscription, output = sys.argv[1:5]
stop = False
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


class PassThrough:
    """The raw pass-through loop in its own process."""

    def __init__(self, url: str, topic: str, output: str) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PASS_THROUGH, url, topic, "raw", output],
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


# --- Function Stream ----------------------------------------------------------------------


def replica_pids(endpoint: str, name: str) -> list[int]:
    try:
        data = call(endpoint, "status", {"name": name})
    except Exception:
        return []
    return [r["pid"] for r in data[0]["replicas"] if r.get("pid")]


class FsFunction:
    """One function created with ``fsctl create`` (in a thread: it returns once RUNNING)."""

    def __init__(self, fsd: Fsd, wasm: Path, replicas: int, topic: str, output: str) -> None:
        self.fsd, self.replicas = fsd, replicas
        self.name = unique("tp")
        self.result: subprocess.CompletedProcess[str] | None = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.running_at: float | None = None
        args = ["create", "-n", self.name, "-a", str(wasm), "-i", topic, "-o", output]
        args += ["-r", str(replicas), "--subscription-position", "earliest"]
        self._thread = threading.Thread(target=self._create, args=(args,), daemon=True)
        self._thread.start()
        self._pids: list[int] = []

    def _create(self, args: list[str]) -> None:
        try:
            self.result = self.fsd.ctl(*args)
            self.running_at = time.monotonic()
        except BaseException as exc:
            self.error = exc

    def wait_created(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise BenchError(f"fsctl create {self.name} did not return within {timeout:.0f}s")
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise BenchError(f"fsctl create {self.name}: {self.error!r}")
        if self.result is not None and self.result.returncode != 0:
            raise BenchError(f"fsctl create {self.name} failed: {self.result.stderr.strip()}")

    def pids(self) -> list[int]:
        """The replicas' pids once all are known (empty before)."""
        if len(self._pids) < self.replicas:
            self._pids = replica_pids(self.fsd.endpoint, self.name)
        return self._pids if len(self._pids) == self.replicas else []

    def counters(self) -> dict[str, int]:
        data = call(self.fsd.endpoint, "status", {"name": self.name})
        total: dict[str, int] = {}
        for rep in data[0]["replicas"]:
            for key in ("processed", "failed", "retried", "dead_lettered", "restarts"):
                total[key] = total.get(key, 0) + int(rep.get(key) or 0)
        return total

    def delete(self) -> None:
        try:
            call(self.fsd.endpoint, "delete", {"name": self.name}, timeout=60)
        except Exception as exc:  # report, but let the real error (if any) through
            progress(f"warning: delete {self.name} failed: {exc}")


# --- throughput runs ----------------------------------------------------------------------


class Env:
    """What every measurement needs."""

    def __init__(
        self, broker: EmbeddedPulsar, client: pulsar.Client, fsd: Fsd, workdir: Path, n: int
    ) -> None:
        self.broker, self.client, self.fsd, self.workdir, self.n = broker, client, fsd, workdir, n
        self.admin = Admin(broker.admin_url)
        assert broker.pid is not None
        self.broker_pid = broker.pid


def throughput_raw(env: Env, payload: str) -> dict[str, float | None]:
    """Drain N pre-filled messages through the raw pass-through process."""
    base = unique("tp-raw")
    topic, output = f"{base}-in", f"{base}-out"
    try:
        fill = prefill(env.client, topic, env.n, PAYLOADS[payload])
        drain = Drain(env.admin, output, env.n, env.broker_pid)
        proc = PassThrough(env.broker.url, topic, output)
        try:
            drain.run(proc.started, lambda: [proc.proc.pid], proc.check)
        finally:
            own = proc.stop()
        res = drain.results(proc.started)
        res["pre-fill msg/s"] = fill
        res["batch size (mean)"] = own["received"] / max(1, own["batches"])
        if own["first"] and own["last"] and own["last"] > own["first"]:
            busy = own["last"] - own["first"]
            res["msg/s (own: first receive to last ack)"] = own["received"] / busy
            res["time in flush (%)"] = 100 * own["flushing"] / busy
        extra = env.admin.published(output) - env.n
        res["duplicates"] = max(0, extra)
        return res
    finally:
        env.admin.delete(topic, output)


def throughput_fs(env: Env, wasm: Path, payload: str, replicas: int) -> dict[str, float | None]:
    """Drain N pre-filled messages through a function with ``replicas`` replicas."""
    base = unique("tp-fs")
    topic, output = f"{base}-in", f"{base}-out"
    fn: FsFunction | None = None
    try:
        fill = prefill(env.client, topic, env.n, PAYLOADS[payload])
        drain = Drain(env.admin, output, env.n, env.broker_pid)
        fn = FsFunction(env.fsd, wasm, replicas, topic, output)
        drain.run(fn.started, fn.pids, fn.check)
        fn.wait_created()
        res = drain.results(fn.started)
        res["pre-fill msg/s"] = fill
        if fn.running_at is not None:
            res["fsctl create (s)"] = fn.running_at - fn.started
        counters = fn.counters()
        res["failed"] = counters.get("failed", 0)
        res["restarts"] = counters.get("restarts", 0)
        res["duplicates"] = max(0, env.admin.published(output) - env.n)
        return res
    finally:
        if fn is not None:
            fn.delete()
        env.admin.delete(topic, output)


# --- latency ------------------------------------------------------------------------------


def _nothing() -> None:
    return None


def latency_run(env: Env, through: str, seconds: float) -> dict[str, Any]:
    """Send JSON records at LATENCY_RATE with the send time in "name"; time their outputs."""
    base = unique("lat")
    topic, output = f"{base}-in", f"{base}-out"
    if through == DIRECT:
        output = topic  # one hop: the consumer reads the input topic itself
    consumer = env.client.subscribe(
        output,
        "latency",
        consumer_type=pulsar.ConsumerType.Exclusive,
        initial_position=pulsar.InitialPosition.Earliest,
    )
    producer = env.client.create_producer(topic, batching_enabled=False)
    proc: PassThrough | None = None
    fn: FsFunction | None = None
    received: dict[int, int] = {}  # seq -> latency in ns
    failed_sends = [0]
    stop = threading.Event()
    reader_error: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                try:
                    msg = consumer.receive(200)
                except pulsar.Timeout:
                    continue
                now = time.monotonic_ns()
                seq, sent = json.loads(msg.data())["name"].split(":")
                received.setdefault(int(seq), now - int(sent))
                consumer.acknowledge(msg)
        except BaseException as exc:
            reader_error.append(exc)

    def on_sent(result: pulsar.Result, _msg_id: Any) -> None:
        if result != pulsar.Result.Ok:
            failed_sends[0] += 1

    thread = threading.Thread(target=reader, daemon=True)
    try:
        check = _nothing  # one hop: no process in between to check on
        if through == RAW:
            proc = PassThrough(env.broker.url, topic, output)
            check = proc.check
        elif through != DIRECT:
            fn = FsFunction(env.fsd, BASIC_WASM, 1, topic, output)
            fn.wait_created()
            check = fn.check
        thread.start()
        warm = int(LATENCY_WARMUP_S * LATENCY_RATE)
        total = warm + int(seconds * LATENCY_RATE)
        started = time.monotonic()
        measure_from = 0.0
        for i in range(total):
            due = started + i / LATENCY_RATE
            ahead = due - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            if i == warm:
                measure_from = time.monotonic()
            sent = time.monotonic_ns()
            payload = b'{"name":"%d:%d","money":%d}' % (i, sent, i)
            producer.send_async(payload, on_sent)
        producer.flush()
        send_end = time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(received) < total:
            time.sleep(0.05)
        check()
        if reader_error:
            raise BenchError(f"latency reader failed: {reader_error[0]!r}")
        window = send_end - measure_from
        lat = sorted(v / 1e6 for k, v in received.items() if k >= warm)
        counted = total - warm
        lost = counted - len(lat)
        return {
            "ops/s": len(lat) / window,
            "failed ops/s": (failed_sends[0] + lost) / window,
            "sent msg/s": counted / window,
            "lost": lost,
            "p50 ms": percentile(lat, 50),
            "p95 ms": percentile(lat, 95),
            "p99 ms": percentile(lat, 99),
            "max ms": lat[-1] if lat else None,
            "n": len(lat),
        }
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(5)
        if proc is not None:
            proc.stop()
        if fn is not None:
            fn.delete()
        producer.close()
        consumer.close()
        env.admin.delete(topic, output)


# --- pulsar-perf --------------------------------------------------------------------------

_AGGREGATED = re.compile(
    r"Aggregated throughput stats --- (\d+) records (sent|received) --- ([\d.]+) msg/s"
)


def provision_perf() -> Path:
    result = subprocess.run(
        ["bash", str(PERF_PROVISION)], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise BenchError(
            f"scripts/provision-pulsar-perf.sh failed ({result.returncode}): "
            f"{result.stderr.strip()[-800:]} (or run with --no-pulsar-perf)"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def pulsar_perf(
    home: Path, args: list[str], count: Callable[[], int], done: Callable[[int, list[str]], bool]
) -> tuple[list[str], list[tuple[float, int]]]:
    """Run FsPulsarPerf, sampling a broker-side counter every 0.2 s; SIGTERM it once ``done``
    (its shutdown hook still prints the aggregated line: log4j's own hook is off)."""
    cmd = [
        find_java(),
        "-Dlog4j2.shutdownHookEnabled=false",
        f"-Dlog4j2.configurationFile={home / 'log4j2.xml'}",
        "-cp",
        f"{home / 'launcher'}:{home / 'lib'}/*",
        "FsPulsarPerf",
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + 120
    terminated = False
    try:
        while proc.poll() is None:
            samples.append((time.monotonic(), count()))
            if not terminated and done(samples[-1][1], lines):
                proc.send_signal(signal.SIGTERM)
                terminated = True
            if time.monotonic() > deadline:
                raise BenchError(f"pulsar-perf {args[0]} did not finish within 120 s")
            time.sleep(0.2)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    code = proc.returncode
    if code != 0 and not (terminated and code == 128 + signal.SIGTERM):
        tail = "\n".join(lines[-15:])
        raise BenchError(f"pulsar-perf {args[0]} exited with {code}:\n{tail}")
    return lines, samples


def _aggregated(lines: list[str]) -> tuple[int, float] | None:
    for text in lines:
        m = _AGGREGATED.search(text)
        if m:
            return int(m.group(1)), float(m.group(3))
    return None


def steady_rate(samples: list[tuple[float, int]], total: int) -> float | None:
    """msg/s between 10 % and 90 % of ``total`` in (time, count) samples, interpolated."""

    if not samples or total <= 0:
        return None
    lo, hi = crossing(samples, total * 0.1), crossing(samples, total * 0.9)
    if lo is None or hi is None or hi <= lo:
        return None
    return total * 0.8 / (hi - lo)


def broker_limit(env: Env, seconds: int) -> dict[str, Any]:
    """pulsar-perf produce (100 B, unthrottled) for ``seconds``, then consume that backlog.

    The headline figures are the broker's own counters (the topic's msgInCounter and
    msgOutCounter, sampled every 0.2 s, between 10 % and 90 % of the total): pulsar-perf's
    aggregated rates divide by the time since its JVM started, client setup included.
    """
    home = provision_perf()
    topic = unique("perf")
    url = env.broker.url
    out: dict[str, Any] = {}
    try:
        progress(f"  pulsar-perf produce -s 100 -time {seconds} ...")
        lines, samples = pulsar_perf(
            home,
            ["produce", "-u", url, "-r", "10000000", "-s", "100", "-time", str(seconds), topic],
            lambda: env.admin.counters(topic)[0],
            lambda _n, lines: any("Closed Producer" in text for text in lines),
        )
        stored = env.admin.counters(topic)[0]
        agg = _aggregated(lines)
        out["produce: broker msg/s (10-90 %)"] = steady_rate(samples, stored)
        out["produce: messages"] = stored
        out["produce: pulsar-perf aggregated msg/s"] = agg[1] if agg else None
        progress("  pulsar-perf consume (the backlog just produced) ...")
        lines, samples = pulsar_perf(
            home,
            ["consume", "-u", url, "-sp", "Earliest", "-ss", "perf", "-time", "100", topic],
            lambda: env.admin.counters(topic)[1],
            lambda n, _lines: n >= stored,
        )
        agg = _aggregated(lines)
        out["consume: broker msg/s (10-90 %)"] = steady_rate(samples, stored)
        out["consume: pulsar-perf aggregated msg/s"] = agg[1] if agg else None
        return out
    finally:
        env.admin.delete(topic)


# --- report -------------------------------------------------------------------------------


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _med(results: dict[str, dict[str, Any]], key: str) -> float | None:
    return results.get(key, {}).get("median")


def _range(st: dict[str, Any], fmt: str = "{:,.0f}") -> str:
    if not st or st.get("median") is None:
        return "-"
    if st["n"] == 1:
        return _num(st["median"], fmt)
    return f"{_num(st['median'], fmt)} ({_num(st['min'], fmt)}-{_num(st['max'], fmt)})"


def print_report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(
        f"Function Stream data-path benchmark: N = {doc['messages']:,} messages per drain, "
        f"{doc['runs']} run(s) per path (median, min-max)"
    )
    print(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, Pulsar {m['pulsar']} "
        f"standalone, pulsar-client {m['pulsar_client']}, wasmtime {m['wasmtime']}"
    )
    print(
        f"load average: {m['loadavg_start']} at start, {m.get('loadavg_end', '?')} at end; "
        f"CPU busy with the broker and fsd idle: {m['busy_before_pct']:.0f} % before, "
        f"{m['busy_after_pct']:.0f} % after"
    )
    if max(m["busy_before_pct"], m["busy_after_pct"]) > 10:
        print("WARNING: something else keeps this machine busy; the figures below suffer from it")
    if doc["broker_conf"]:
        print(f"broker settings added to fsd's embedded standalone.conf: {doc['broker_conf']}")
    lim = doc.get("broker_limit")
    print()
    if lim:
        print("Broker limit (pulsar-perf 4.0.8, Java client, 100 B messages, unthrottled):")
        print(
            f"  produce: {_num(lim['produce: broker msg/s (10-90 %)'])} msg/s "
            f"({lim['produce: messages']:,} messages; pulsar-perf's aggregated line: "
            f"{_num(lim['produce: pulsar-perf aggregated msg/s'])} msg/s)"
        )
        print(
            f"  consume that backlog: {_num(lim['consume: broker msg/s (10-90 %)'])} msg/s "
            f"(pulsar-perf's aggregated line: "
            f"{_num(lim['consume: pulsar-perf aggregated msg/s'])} msg/s)"
        )
        print(
            "  (the broker's own in/out counters between 10 % and 90 % of the messages; "
            "pulsar-perf's rates\n   also count its JVM's client setup)"
        )
        print()
    tp = doc["throughput"]
    if tp:
        _print_throughput(doc)
    if doc["latency"]:
        _print_latency(doc)


def _print_throughput(doc: dict[str, Any]) -> None:
    tp = doc["throughput"]
    print(
        "Throughput: drain N pre-filled messages; counted on the output topic "
        "(10-90 % of N: steady state)"
    )
    header = (
        f"  {'path':<30} {'msg/s 10-90 %':>26} {'% ceiling':>9} {'start->N msg/s':>15} "
        f"{'1st out s':>9} {'CPU us/msg':>10} {'broker':>7} {'rest':>5} {'busy %':>6}"
    )
    print(header)
    for label, res in tp.items():
        ceiling = doc["ceilings"].get(label)
        steady = _med(res, "msg/s (10-90 %)")
        pct = "" if ceiling is None or steady is None else f"{100 * steady / ceiling:.0f} %"
        if label.startswith(RAW):
            pct = "ceiling"
        print(
            f"  {label:<30} {_range(res.get('msg/s (10-90 %)', {})):>26} {pct:>9} "
            f"{_num(_med(res, 'msg/s (start to N)')):>15} "
            f"{_num(_med(res, 'start to first output (s)'), '{:.2f}'):>9} "
            f"{_num(_med(res, 'CPU us/msg: measured processes'), '{:.1f}'):>10} "
            f"{_num(_med(res, 'CPU us/msg: broker'), '{:.1f}'):>7} "
            f"{_num(_med(res, 'CPU us/msg: everything else'), '{:.1f}'):>5} "
            f"{_num(_med(res, 'machine CPU busy (%)'), '{:.0f}'):>6}"
        )
    for label, res in tp.items():
        if label.startswith(RAW):
            print(
                f"  ({label}: mean batch {_num(_med(res, 'batch size (mean)'))} messages, "
                f"{_num(_med(res, 'time in flush (%)'))} % of its time waiting in flush(); its "
                f"own first-receive-to-last-ack rate "
                f"{_num(_med(res, 'msg/s (own: first receive to last ack)'))} msg/s; pre-fill "
                f"{_num(_med(res, 'pre-fill msg/s'))} msg/s)"
            )
    print(
        "  (CPU us/msg: the measured process(es), i.e. the pass-through process or all replicas; "
        "broker: the Pulsar JVM;\n   rest: everything else on the machine, this script and fsd "
        "included; busy %: all CPUs; all over the 10-90 % window)"
    )
    print()


def _print_latency(doc: dict[str, Any]) -> None:
    lat = doc["latency"]
    print(
        f"Latency at {LATENCY_RATE:,} msg/s for {doc['latency_seconds']:.0f} s "
        f"(after {LATENCY_WARMUP_S:.0f} s warm-up), JSON records, send -> output received:"
    )
    print(
        f"  {'path':<34} {'ops/s':>7} {'failed ops/s':>12} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7}"
    )
    for label, r in lat.items():
        print(
            f"  {label:<34} {_num(r['ops/s'], '{:.1f}'):>7} {_num(r['failed ops/s'], '{:.1f}'):>12}"
            f" {_num(r['p50 ms'], '{:.2f}'):>7} {_num(r['p95 ms'], '{:.2f}'):>7} "
            f"{_num(r['p99 ms'], '{:.2f}'):>7} {_num(r['max ms'], '{:.2f}'):>7}"
        )


# --- main ---------------------------------------------------------------------------------


def run_all(env: Env, opts: argparse.Namespace, doc: dict[str, Any]) -> None:
    if "broker" in opts.only and not opts.no_pulsar_perf:
        progress("broker limit (pulsar-perf) ...")
        busy = wait_quiet()
        doc["broker_limit"] = broker_limit(env, opts.perf_seconds)
        doc["broker_limit"]["machine CPU busy just before (%)"] = busy
    doc["throughput"], doc["ceilings"], doc["latency"] = {}, {}, {}
    if "throughput" in opts.only:
        throughput_all(env, opts, doc)
    if "languages" in opts.only:
        languages_all(env, opts, doc)
    if "latency" in opts.only:
        paths = (
            (f"{DIRECT}: producer -> consumer", DIRECT),
            (f"{RAW}, JSON", RAW),
            ("FS basic JSON, 1 replica", "fs"),
        )
        for label, through in paths:
            progress(f"latency: {label}, {LATENCY_RATE} msg/s for {opts.latency_seconds:.0f} s ...")
            busy = wait_quiet()
            res = latency_run(env, through, opts.latency_seconds)
            res["machine CPU busy just before (%)"] = busy
            doc["latency"][label] = res
            progress(
                f"    p50 {res['p50 ms']:.2f} ms, p99 {res['p99 ms']:.2f} ms, "
                f"max {res['max ms']:.2f} ms, lost {res['lost']}"
            )


def throughput_all(env: Env, opts: argparse.Namespace, doc: dict[str, Any]) -> None:

    echo_wasm = env.workdir / "echo.wasm"
    echo_wasm.write_bytes(wasmtime.wat2wasm(BATCH_ECHO))
    raw100, raw_json = f"{RAW}, 100 B", f"{RAW}, JSON"
    paths: list[tuple[str, Callable[[], dict[str, float | None]]]] = [
        (raw100, lambda: throughput_raw(env, "100 B"))
    ]
    for r in (1, 2, 4):
        paths.append(
            (
                f"FS echo 100 B, {r} replica{'s' if r > 1 else ''}",
                lambda r=r: throughput_fs(env, echo_wasm, "100 B", r),
            )
        )
    paths.append((raw_json, lambda: throughput_raw(env, "JSON")))
    for r in (1, 2, 4):
        paths.append(
            (
                f"FS basic JSON, {r} replica{'s' if r > 1 else ''}",
                lambda r=r: throughput_fs(env, BASIC_WASM, "JSON", r),
            )
        )
    _run_paths(paths, opts, doc)


def languages_all(env: Env, opts: argparse.Namespace, doc: dict[str, Any]) -> None:
    """examples/basic in every language (its committed basic.wasm), 1 replica, vs raw JSON."""
    raw_json = f"{RAW}, JSON"
    paths: list[tuple[str, Callable[[], dict[str, float | None]]]] = []
    if raw_json not in doc["throughput"]:
        paths.append((raw_json, lambda: throughput_raw(env, "JSON")))
    for wasm in sorted(REPO.glob("examples/basic/*/basic.wasm")):
        lang = wasm.parent.name
        paths.append(
            (f"FS basic {lang}, 1 replica", lambda w=wasm: throughput_fs(env, w, "JSON", 1))
        )
    _run_paths(paths, opts, doc, warm=bool(paths) and paths[0][0] == raw_json)


def _run_paths(
    paths: list[tuple[str, Callable[[], dict[str, float | None]]]],
    opts: argparse.Namespace,
    doc: dict[str, Any],
    warm: bool = True,
) -> None:
    """Measure each path opts.runs times (alternating); add the summaries and ceilings to doc."""
    for i in range(opts.warmup if warm else 0):
        # The broker's JIT and caches: the first drains after its start are much slower.
        for label, measure in paths[:2]:
            progress(f"warm-up {i + 1}/{opts.warmup} (not counted): {label} ...")
            res = measure()
            progress(f"    {_num(res.get('msg/s (10-90 %)'))} msg/s (10-90 %)")
    samples: dict[str, dict[str, list[float]]] = {label: {} for label, _ in paths}
    # Paths alternate within each round, so machine noise hits all of them alike.
    for run in range(opts.runs):
        for label, measure in paths:
            progress(f"throughput run {run + 1}/{opts.runs}: {label} ...")
            busy = wait_quiet()
            res = measure()
            res["machine CPU busy just before (%)"] = busy
            for key, value in res.items():
                if value is not None:
                    samples[label].setdefault(key, []).append(float(value))
            progress(
                f"    {_num(res.get('msg/s (10-90 %)'))} msg/s (10-90 %), "
                f"{_num(res.get('msg/s (start to N)'))} msg/s start to N"
            )
            if res.get("duplicates") or res.get("failed"):
                dup, failed = res.get("duplicates"), res.get("failed")
                progress(f"    note: {dup} duplicates, {failed} failed")
    doc["throughput"].update(
        {label: {key: summary(values) for key, values in keys.items()}
         for label, keys in samples.items()}
    )  # fmt: skip
    raw100, raw_json = f"{RAW}, 100 B", f"{RAW}, JSON"
    for label in doc["throughput"]:
        base = raw100 if "100 B" in label else raw_json
        value = _med(doc["throughput"].get(base, {}), "msg/s (10-90 %)")
        if value is not None:
            doc["ceilings"][label] = value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, help="messages per drain (200000; --quick 50000)")
    parser.add_argument("--runs", type=int, help="runs per throughput path (3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="fewer messages, runs and seconds")
    parser.add_argument(
        "--warmup", type=int, default=1, help="uncounted rounds of the first two paths (1)"
    )
    parser.add_argument("--no-pulsar-perf", action="store_true", help="skip the broker limit")
    parser.add_argument(
        "--only",
        action="append",
        choices=["broker", "throughput", "languages", "latency"],
        help="run only these parts (repeat; default: all four)",
    )
    parser.add_argument(
        "--broker-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra standalone.conf line for the broker (repeat), to try a broker setting",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document instead")
    opts = parser.parse_args()
    opts.messages = opts.messages or (50_000 if opts.quick else 200_000)
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.latency_seconds = 10.0 if opts.quick else 20.0
    opts.only = opts.only or ["broker", "throughput", "languages", "latency"]
    opts.perf_seconds = 10
    if opts.messages < 1000 or opts.runs < 1 or opts.warmup < 0:
        parser.error("--messages must be >= 1000, --runs >= 1, --warmup >= 0")
    if any("=" not in kv for kv in opts.broker_conf):
        parser.error("--broker-conf takes KEY=VALUE")
    logs.configure("warning")
    signal.signal(signal.SIGTERM, interrupt)
    os.environ.pop("FS_TEST_PULSAR_ADMIN_URL", None)  # we pass --pulsar-admin-url ourselves

    doc: dict[str, Any] = {
        "messages": opts.messages,
        "runs": opts.runs,
        "warmup": opts.warmup,
        "broker_conf": opts.broker_conf,
        "latency_seconds": opts.latency_seconds,
        "machine": machine_info(),
    }
    root = Path(tempfile.mkdtemp(prefix="fs-bench-tp-"))
    broker = BenchPulsar(data_dir=root / "pulsar", broker_port=free_port(), web_port=free_port())
    broker.extra_conf = tuple(opts.broker_conf)
    client: pulsar.Client | None = None
    fsd: Fsd | None = None
    ok = False
    started = time.monotonic()
    try:
        progress(f"starting Pulsar {PULSAR_VERSION} standalone ({broker.url}) ...")
        t = time.monotonic()
        broker.start()
        broker.wait_ready(timeout=180)
        doc["broker_start_s"] = time.monotonic() - t
        client = pulsar_client(broker.url)
        fsd = Fsd(root / "fsd", broker.url, extra=["--pulsar-admin-url", broker.admin_url])
        fsd.workdir.mkdir(parents=True, exist_ok=True)
        progress("starting fsd ...")
        fsd.start()
        env = Env(broker, client, fsd, root, opts.messages)
        doc["machine"]["busy_before_pct"] = machine_busy()
        run_all(env, opts, doc)
        doc["machine"]["busy_after_pct"] = machine_busy()
        code = fsd.stop()
        if code != 0:
            raise BenchError(f"fsd exited with {code}:\n{fsd.log_tail()}")
        doc["machine"]["loadavg_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        doc["elapsed_s"] = time.monotonic() - started
        ok = True
    except BenchError as exc:
        print(f"bench_throughput: {exc}", file=sys.stderr)
    except AssertionError as exc:  # from tests.helpers.Fsd
        print(f"bench_throughput: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("bench_throughput: interrupted", file=sys.stderr)
    finally:
        if fsd is not None and fsd.proc is not None and fsd.proc.poll() is None:
            if not ok:
                print(f"fsd log tail:\n{fsd.log_tail()}", file=sys.stderr)
            fsd.stop()
        if client is not None:
            client.close()
        progress("stopping the broker ...")
        broker.stop()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"broker data and log, fsd state and log kept in {root}", file=sys.stderr)
    if not ok:
        return 1
    print_results(doc, opts.json, print_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
