"""The paths the data-path benchmark drains: the raw loop and Function Stream, and latency.

Split out of perf/bench_throughput.py. ``Env`` holds what every run needs: the
broker, a client, the fsd under test and, with ``--before``, a second fsd that
runs an older checkout of the code against the same broker (same-run before /
after figures).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pulsar

from fsctl.client import call
from fsd.broker import EmbeddedPulsar
from perf.harness import BenchError, progress
from perf.tp_drain import PAYLOADS, Admin, Drain, percentile, prefill
from perf.tp_raw import PassThrough
from perf.tp_report import LATENCY_RATE, LATENCY_WARMUP_S, RAW
from tests.helpers import Fsd, unique

REPO = Path(__file__).resolve().parent.parent
BASIC_WASM = REPO / "examples" / "basic" / "c" / "basic.wasm"
DIRECT = "broker only"
BEFORE = "fs-before"  # latency_run: through the --before fsd


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
        self,
        broker: EmbeddedPulsar,
        client: pulsar.Client,
        fsd: Fsd,
        workdir: Path,
        n: int,
        before: Fsd | None = None,
    ) -> None:
        self.broker, self.client, self.fsd, self.workdir, self.n = broker, client, fsd, workdir, n
        # --before: an fsd running an older checkout, for same-run before/after figures.
        self.before = before
        self.admin = Admin(broker.admin_url)
        assert broker.pid is not None
        self.broker_pid = broker.pid


def throughput_raw(env: Env, payload: str, job: str = "pass") -> dict[str, float | None]:
    """Drain N pre-filled messages through the raw pass-through process (``job``: tp_raw)."""
    base = unique("tp-raw")
    topic, output = f"{base}-in", f"{base}-out"
    try:
        fill = prefill(env.client, topic, env.n, PAYLOADS[payload])
        drain = Drain(env.admin, output, env.n, env.broker_pid)
        proc = PassThrough(env.broker.url, topic, output, job)
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


def throughput_fs(
    env: Env, wasm: Path, payload: str, replicas: int, before: bool = False
) -> dict[str, float | None]:
    """Drain N pre-filled messages through a function with ``replicas`` replicas
    (``before``: on the --before fsd)."""
    base = unique("tp-fs")
    topic, output = f"{base}-in", f"{base}-out"
    fn: FsFunction | None = None
    try:
        fill = prefill(env.client, topic, env.n, PAYLOADS[payload])
        drain = Drain(env.admin, output, env.n, env.broker_pid)
        fsd = env.before if before and env.before is not None else env.fsd
        fn = FsFunction(fsd, wasm, replicas, topic, output)
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
            fsd = env.before if through == BEFORE and env.before is not None else env.fsd
            fn = FsFunction(fsd, BASIC_WASM, 1, topic, output)
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
