"""Supervision benchmark: create-to-first-output, kill -9 recovery, memory per replica.

Starts one real Pulsar standalone (on free ports, data in a temp dir) and, one
after the other, two fsd daemons against it: one with the default settings and
one with ``--backoff-base 0.01``, so the restart figures separate the backoff
wait from the mechanical cost of a restart. Every run uses a fresh function
(fresh topics), so each kill is a replica's first restart: no exponential
growth of the delay, no FATAL from the restart limit.

Each figure is printed next to a baseline measured in the same run on the same
broker (a bare Python process that imports pulsar, subscribes and creates a
producer; a bare process that deserializes the compiled example module), so
the numbers mean something on a noisy machine. It never asserts timings: it
exits 0 unless something failed to work.

    python perf/bench_supervision.py [--runs N] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402
import pulsar  # noqa: E402

from fscommon import logs  # noqa: E402
from fsctl.client import call  # noqa: E402
from fsd.broker import PULSAR_VERSION, EmbeddedPulsar  # noqa: E402
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

WASM = REPO / "examples" / "basic" / "c" / "basic.wasm"
POLL_S = 0.010  # status polling interval during recovery
WARM_MESSAGES = 20  # messages a replica processes before its RSS is read
TIMEOUT_S = 60.0
PULSAR_FLOOR = "python: import pulsar, client, subscribe, producer"
WORKER_FLOOR = "python: all of the above (worker-shaped)"


# --- statistics ---------------------------------------------------------------------------


@dataclass
class Metrics:
    """Named sample lists, in insertion order."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float | None) -> None:
        lst = self.samples.setdefault(name, [])
        if value is not None:
            lst.append(value)

    def get(self, name: str) -> dict[str, Any]:
        return summary(self.samples.get(name, []))

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: summary(values) for name, values in self.samples.items()}


# --- output topic watcher -----------------------------------------------------------------


class OutputWatch:
    """A subscription on an output topic (made before anything can arrive) that timestamps
    every message when the client delivers it, from the client's listener thread."""

    def __init__(self, client: pulsar.Client, topic: str) -> None:
        self._cond = threading.Condition()
        self.arrivals: list[tuple[float, str]] = []
        self._consumer = client.subscribe(
            topic,
            "bench-watch",
            consumer_type=pulsar.ConsumerType.Exclusive,
            initial_position=pulsar.InitialPosition.Earliest,
            message_listener=self._on_message,
        )

    def _on_message(self, consumer: pulsar.Consumer, msg: pulsar.Message) -> None:
        now = time.monotonic()
        try:
            name = json.loads(msg.data())["name"]
        except (ValueError, KeyError, TypeError):
            name = "?"
        consumer.acknowledge(msg)
        with self._cond:
            self.arrivals.append((now, name))
            self._cond.notify_all()

    def wait_for(self, names: set[str], timeout: float) -> dict[str, float]:
        """First arrival time of each of ``names``; BenchError if not all arrive in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                first: dict[str, float] = {}
                for when, name in self.arrivals:
                    if name in names and name not in first:
                        first[name] = when
                if len(first) == len(names):
                    return first
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(names - set(first))[:5]
                    raise BenchError(f"output never arrived for {missing} within {timeout:.0f}s")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self._consumer.close()


def record(name: str, i: int = 0) -> bytes:
    """An input record for the basic example."""
    return json.dumps({"name": name, "money": i}, separators=(",", ":")).encode()


# --- baseline ------------------------------------------------------------------------------

_PULSAR_FLOOR = r"""
import json, os, sys, time
t0 = time.perf_counter()
import pulsar
t1 = time.perf_counter()
c = pulsar.Client(sys.argv[1], operation_timeout_seconds=10, connection_timeout_ms=5000,
                  logger=pulsar.FileLogger(pulsar.LoggerLevel.Error, os.devnull))
cons = c.subscribe([sys.argv[2]], sys.argv[3], consumer_type=pulsar.ConsumerType.Shared,
                   initial_position=pulsar.InitialPosition.Earliest, receiver_queue_size=1000)
t2 = time.perf_counter()
p = c.create_producer(sys.argv[4], batching_enabled=True, batching_max_publish_delay_ms=1)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "subscribe": t2 - t1, "producer": t3 - t2}), flush=True)
os._exit(0)
"""

_MODULE_FLOOR = r"""
import json, os, sys, time
t0 = time.perf_counter()
import wasmtime
from pathlib import Path
from fsworker import module_cache
from fsworker.engine import new_engine
t1 = time.perf_counter()
engine = new_engine()
module_cache.load(engine, Path(sys.argv[1]), Path(sys.argv[2]))
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1}), flush=True)
os._exit(0)
"""

_WORKER_FLOOR = r"""
import json, os, sys, time
t0 = time.perf_counter()
import fsworker.cli
import pulsar
from pathlib import Path
from fsworker import module_cache
from fsworker.engine import new_engine
t1 = time.perf_counter()
module_cache.load(new_engine(), Path(sys.argv[1]), Path(sys.argv[2]))
t2 = time.perf_counter()
c = pulsar.Client(sys.argv[3], operation_timeout_seconds=10, connection_timeout_ms=5000,
                  logger=pulsar.FileLogger(pulsar.LoggerLevel.Error, os.devnull))
cons = c.subscribe([sys.argv[4]], sys.argv[5], consumer_type=pulsar.ConsumerType.Shared,
                   initial_position=pulsar.InitialPosition.Earliest, receiver_queue_size=1000)
p = c.create_producer(sys.argv[6], batching_enabled=True, batching_max_publish_delay_ms=1)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "connect": t3 - t2}), flush=True)
os._exit(0)
"""

_WORKER_IMPORTS = r"""
import json, os, time
t0 = time.perf_counter()
import fsworker.cli
print(json.dumps({"import": time.perf_counter() - t0}), flush=True)
os._exit(0)
"""


def _timed_python(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Wall time of ``python ARGS`` from spawn to exit, and the phases it printed."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise BenchError(
            f"baseline {args[:2]} failed ({result.returncode}): {result.stderr[-800:]}"
        )
    lines = result.stdout.strip().splitlines()
    return wall, (json.loads(lines[-1]) if lines else {})


def measure_baseline(url: str, runs: int, workdir: Path, out: Metrics) -> None:
    """Floors for a replica start, measured on the same machine and broker."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    topic, output = unique("bench-floor-in"), unique("bench-floor-out")
    # The topics and the subscription exist already, as they do when a replica restarts.
    c = pulsar_client(url)
    try:
        c.subscribe(topic, "bench-floor").close()
        c.create_producer(output).close()
    finally:
        c.close()
    cache = workdir / "compiled"
    pulsar_args = ["-c", _PULSAR_FLOOR, url, topic, "bench-floor", output]
    module_args = ["-c", _MODULE_FLOOR, str(WASM), str(cache)]
    worker_args = ["-c", _WORKER_FLOOR, str(WASM), str(cache), url, topic, "bench-floor", output]
    # One uncounted round: page cache, and the module artifact gets compiled into ``cache``.
    for args in (["-c", "pass"], ["-c", _WORKER_IMPORTS], pulsar_args, module_args, worker_args):
        _timed_python(args, env)
    for _ in range(runs):
        wall, _phases = _timed_python(["-c", "pass"], env)
        out.add("python -c pass", wall)
        wall, phases = _timed_python(["-c", _WORKER_IMPORTS], env)
        out.add("python: import fsworker.cli", wall)
        out.add("  in-process: import fsworker.cli", phases.get("import"))
        wall, phases = _timed_python(pulsar_args, env)
        out.add(PULSAR_FLOOR, wall)
        out.add("  in-process: import pulsar", phases.get("import"))
        out.add("  in-process: client + subscribe", phases.get("subscribe"))
        out.add("  in-process: create producer", phases.get("producer"))
        wall, phases = _timed_python(module_args, env)
        out.add("python: import wasmtime, load cached module", wall)
        out.add("  in-process: import wasmtime + fsworker engine", phases.get("import"))
        out.add("  in-process: deserialize cached module", phases.get("load"))
        wall, phases = _timed_python(worker_args, env)
        out.add(WORKER_FLOOR, wall)
        out.add("  in-process: imports (fsworker.cli, pulsar)", phases.get("import"))
        out.add("  in-process: load module", phases.get("load"))
        out.add("  in-process: client, subscribe, producer", phases.get("connect"))


# --- fsd runs ------------------------------------------------------------------------------


def _replica(endpoint: str, name: str) -> dict[str, Any]:
    data = call(endpoint, "status", {"name": name})
    replicas = data[0]["replicas"]
    if len(replicas) != 1:
        raise BenchError(f"{name}: expected 1 replica, status shows {len(replicas)}")
    return replicas[0]


def _wait_replica(endpoint: str, name: str, ok: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    rep: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rep = _replica(endpoint, name)
        if ok(rep):
            return rep
        if rep["state"] == "FATAL":
            raise BenchError(f"{name} went FATAL: {rep.get('last_error')}")
        time.sleep(0.05)
    raise BenchError(f"timed out waiting for {what} of {name} (last: {rep})")


def _restart_from_log(fsd: Fsd, name: str) -> tuple[float, float] | None:
    """(EXITED -> STARTING, STARTING -> RUNNING) of the restart, from fsd's own log.

    The log's timestamps are taken inside fsd, so they need no polling at all.
    """
    stamps: dict[str, float] = {}
    try:
        lines = fsd.log_path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("function") != name or rec.get("event") != "replica state":
            continue
        when = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
        if rec["new"] == "EXITED":
            stamps["exited"] = when
        elif rec["new"] == "STARTING" and "exited" in stamps:
            stamps["starting"] = when
        elif rec["new"] == "RUNNING" and "starting" in stamps:
            stamps["running"] = when
    if len(stamps) != 3:
        return None
    return stamps["starting"] - stamps["exited"], stamps["running"] - stamps["starting"]


def one_run(
    fsd: Fsd, client: pulsar.Client, out: Metrics, counted: bool, poll_status: bool = True
) -> None:
    """Create a fresh function, feed it, kill -9 its replica, watch it recover, delete it.

    With ``poll_status`` False nothing talks to fsd between the kill and the output
    (the 10 ms status polls wake fsd's loop, which can itself shorten the restart).
    """
    name = unique("bench")
    inp, outp = f"{name}-in", f"{name}-out"
    add = out.add if counted else (lambda *_a: None)
    producer = client.create_producer(inp)
    watch = OutputWatch(client, outp)
    try:
        started = time.monotonic()
        if fsd.ctl("ping").returncode != 0:
            raise BenchError("fsctl ping failed")
        add("fsctl ping (CLI round trip floor)", time.monotonic() - started)

        # (a) A message waits on the input topic; the Shared subscription starts at Earliest.
        producer.send(record("pre"))
        created: dict[str, Any] = {}

        def run_create() -> None:
            started = time.monotonic()
            created["result"] = fsd.ctl(
                "create", "-n", name, "-a", str(WASM), "-i", inp, "-o", outp, "-r", "1"
            )
            created["done"] = time.monotonic()
            created["started"] = started

        t0 = time.monotonic()
        creator = threading.Thread(target=run_create, daemon=True)
        creator.start()
        first = watch.wait_for({"pre"}, TIMEOUT_S)["pre"]
        creator.join(TIMEOUT_S)
        if creator.is_alive():
            raise BenchError(f"fsctl create {name} did not return within {TIMEOUT_S:.0f}s")
        result = created["result"]
        if result.returncode != 0:
            raise BenchError(f"fsctl create {name} failed: {result.stderr.strip()}")
        add("create-to-first-output", first - t0)
        add("fsctl create (until RUNNING)", created["done"] - created["started"])

        # (c) Let the replica process some messages, then read its memory.
        names = {f"warm-{i}" for i in range(WARM_MESSAGES)}
        for i, n in enumerate(sorted(names)):
            producer.send_async(record(n, i), None)
        producer.flush()
        watch.wait_for(names, TIMEOUT_S)
        rep = _wait_replica(
            fsd.endpoint,
            name,
            lambda r: r["state"] == "RUNNING" and r["processed"] >= WARM_MESSAGES + 1,
            "the heartbeat counting the warm-up messages",
        )
        pid = rep["pid"]
        add("replica RSS (status rss_bytes)", rep.get("rss_bytes"))
        try:
            mem = psutil.Process(pid).memory_full_info()
            add("replica USS (psutil)", mem.uss)
            add("replica PSS (psutil)", mem.pss)
        except psutil.Error:
            pass

        # (b) kill -9, then one message produced right after the kill.
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        producer.send(record("after-kill"))
        if not poll_status:
            output_at = watch.wait_for({"after-kill"}, TIMEOUT_S)["after-kill"]
            rep = _replica(fsd.endpoint, name)
            if rep["state"] != "RUNNING" or rep["pid"] == pid or rep["restarts"] != 1:
                raise BenchError(f"{name}: unexpected status after kill -9 and recovery: {rep}")
            add("kill -9 -> next message out, no status polling", output_at - killed_at)
            logged = _restart_from_log(fsd, name)
            if logged:
                add("fsd log: EXITED -> STARTING, no status polling", logged[0])
                add("fsd log: STARTING -> RUNNING, no status polling", logged[1])
            return
        seen: dict[str, float] = {}
        deadline = killed_at + TIMEOUT_S
        while True:
            rep = _replica(fsd.endpoint, name)
            now = time.monotonic()
            state, new_pid = rep["state"], rep["pid"]
            if state in ("EXITED", "BACKOFF") or new_pid != pid:
                seen.setdefault("exit noticed", now)
            if state in ("STARTING", "RUNNING") and new_pid not in (None, pid):
                seen.setdefault("respawned", now)
            if state == "RUNNING" and new_pid not in (None, pid):
                seen["RUNNING"] = now
                break
            if state == "FATAL":
                raise BenchError(f"{name} went FATAL after kill -9: {rep.get('last_error')}")
            if now > deadline:
                raise BenchError(f"{name} not RUNNING again within {TIMEOUT_S:.0f}s: {rep}")
            time.sleep(POLL_S)
        if rep["restarts"] != 1:
            raise BenchError(f"{name}: expected restarts == 1 after one kill, status shows {rep}")
        output_at = watch.wait_for({"after-kill"}, TIMEOUT_S)["after-kill"]
        add("kill -9 -> exit noticed (status)", seen["exit noticed"] - killed_at)
        add("kill -9 -> respawned (STARTING, new pid)", seen["respawned"] - killed_at)
        add("respawned -> RUNNING (worker start)", seen["RUNNING"] - seen["respawned"])
        add("kill -9 -> RUNNING again", seen["RUNNING"] - killed_at)
        add("kill -9 -> next message out", output_at - killed_at)
        logged = _restart_from_log(fsd, name)
        if logged:
            add("fsd log: EXITED -> STARTING", logged[0])
            add("fsd log: STARTING -> RUNNING", logged[1])
    finally:
        watch.close()
        producer.close()
        try:
            call(fsd.endpoint, "delete", {"name": name}, timeout=60)
        except Exception as exc:  # report, but let the real error (if any) through
            print(f"warning: delete {name} failed: {exc}", file=sys.stderr)


def measure_fsd(
    label: str,
    extra: list[str],
    broker: EmbeddedPulsar,
    client: pulsar.Client,
    runs: int,
    warmup: int,
) -> tuple[Metrics, dict[str, Any]]:
    """Start one fsd, do warmup + runs, read fsd's RSS, stop it."""
    workdir = Path(tempfile.mkdtemp(prefix="fsb-", dir="/tmp"))
    extra = [*extra, "--pulsar-admin-url", broker.admin_url]
    fsd = Fsd(workdir, broker.url, extra=extra)
    metrics = Metrics()
    info: dict[str, Any] = {"label": label, "fsd_args": extra, "workdir": str(workdir)}
    try:
        fsd.start()
        assert fsd.proc is not None
        fsd_ps = psutil.Process(fsd.proc.pid)
        info["fsd_rss_idle"] = fsd_ps.memory_info().rss
        # Polled and unpolled runs alternate, so machine noise hits both alike.
        for i in range(warmup + 2 * runs):
            counted = i >= warmup
            polled = (i - warmup) % 2 == 0
            what = f"run {(i - warmup) // 2 + 1}{'' if polled else ' (no polling)'}"
            progress(f"  {label}: {what if counted else 'warm-up'}")
            one_run(fsd, client, metrics, counted, poll_status=polled)
            if counted:
                metrics.add("fsd RSS after each run", fsd_ps.memory_info().rss)
        code = fsd.stop()
        if code != 0:
            raise BenchError(f"fsd ({label}) exited with {code}:\n{fsd.log_tail()}")
    except BaseException:
        print(f"fsd ({label}) log tail:\n{fsd.log_tail()}", file=sys.stderr)
        if fsd.proc is not None and fsd.proc.poll() is None:
            fsd.stop()
        info["keep"] = True
        raise
    finally:
        if not info.get("keep"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"fsd ({label}) files kept in {workdir}", file=sys.stderr)
    return metrics, info


# --- report -------------------------------------------------------------------------------

W = 50  # label column


def _s(v: float | None) -> str:
    return "    -  " if v is None else f"{v:7.3f}"


def _mb(v: float | None) -> str:
    return "    -  " if v is None else f"{v / 2**20:7.1f}"


def _line(label: str, st: dict[str, Any], unit: str, floor: tuple[str, float] | None = None) -> str:
    fmt = _mb if unit == "MB" else _s
    text = f"  {label:<{W}} {st['n']:>3} {fmt(st['median'])} {fmt(st['min'])} {fmt(st['max'])}"
    text += f"  {unit}"
    if floor and st["median"] is not None:
        name, value = floor
        text += f"  ({name} {value:.3f} s, {st['median'] / value:.1f}x)"
    return text


# Which floor each fsd figure is set against.
_FLOORED = {
    "create-to-first-output": "process floor",
    "fsctl create (until RUNNING)": "process floor",
    "respawned -> RUNNING (worker start)": "worker-shaped floor",
    "kill -9 -> RUNNING again": "process floor",
    "kill -9 -> next message out": "process floor",
    "kill -9 -> next message out, no status polling": "process floor",
}
_MEMORY = ("RSS", "USS", "PSS")


def print_report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    base = doc["baseline"]
    floors = {
        "process floor": base[PULSAR_FLOOR]["median"],
        "worker-shaped floor": base[WORKER_FLOOR]["median"],
    }
    print(f"Function Stream supervision benchmark: --runs {doc['runs']} (n = samples; each "
          f"fsd does {doc['runs']} polled and {doc['runs']} unpolled kill runs, each on a fresh "
          f"function, after {doc['warmup']} uncounted warm-up)")  # fmt: skip
    print(f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
          f"Pulsar {m['pulsar']} standalone, pulsar-client {m['pulsar_client']}, "
          f"wasmtime {m['wasmtime']}")  # fmt: skip
    print(f"load average: {m['loadavg_start']} at start, {m['loadavg_end']} at end")
    print()
    print(f"  {'':<{W}} {'n':>3} {'median':>7} {'min':>7} {'max':>7}")
    print("Baseline: bare Python processes, same machine, same broker (spawn to exit)")
    for label, st in base.items():
        print(_line(label, st, "s"))
    for cfg in doc["fsd"]:
        args = [a for a in cfg["fsd_args"] if not a.startswith("http")]
        args = [a for a in args if a != "--pulsar-admin-url"]
        print(f"fsd {cfg['label']} ({' '.join(args) or 'default settings'})")
        for label, st in cfg["results"].items():
            if any(word in label for word in _MEMORY):
                continue
            floor = _FLOORED.get(label)
            print(_line(label, st, "s", (floor, floors[floor]) if floor else None))
    print("Memory (fsd default; replica after processing some messages)")
    res = doc["fsd"][0]["results"]
    for label in ("replica RSS (status rss_bytes)", "replica USS (psutil)", "replica PSS (psutil)"):
        if label in res:
            print(_line(label, res[label], "MB"))
    for cfg in doc["fsd"]:
        trend = cfg["results"].get("fsd RSS after each run", {}).get("samples", [])
        trend_mb = ", ".join(f"{x / 2**20:.1f}" for x in trend)
        print(f"  fsd RSS ({cfg['label']}): {cfg['fsd_rss_idle'] / 2**20:.1f} MB idle, "
              f"after each run: {trend_mb} MB")  # fmt: skip
    print(f"  broker RSS (Pulsar standalone JVM, -Xmx512m): {doc['broker_rss'] / 2**20:.1f} MB")


# --- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs per fsd (default 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead")
    opts = parser.parse_args()
    if opts.runs < 1:
        parser.error("--runs must be >= 1")
    logs.configure("warning")
    # SIGTERM ends the benchmark like Ctrl-C: through the finally blocks below.
    signal.signal(signal.SIGTERM, interrupt)
    os.environ.pop("FS_TEST_PULSAR_ADMIN_URL", None)  # we pass --pulsar-admin-url ourselves

    doc: dict[str, Any] = {"runs": opts.runs, "warmup": opts.warmup, "machine": machine_info()}
    root = Path(tempfile.mkdtemp(prefix="fs-bench-"))
    broker = EmbeddedPulsar(data_dir=root / "pulsar", broker_port=free_port(), web_port=free_port())
    client: pulsar.Client | None = None
    ok = False
    started = time.monotonic()
    try:
        progress(f"starting Pulsar {PULSAR_VERSION} standalone ({broker.url}) ...")
        t = time.monotonic()
        broker.start()
        broker.wait_ready(timeout=180)
        doc["broker_start_s"] = time.monotonic() - t
        client = pulsar_client(broker.url)

        progress("baseline: bare processes ...")
        base = Metrics()
        measure_baseline(broker.url, opts.runs, root, base)
        doc["baseline"] = base.as_dict()

        doc["fsd"] = []
        configs = [
            ("default", []),
            ("backoff-base 0.01", ["--backoff-base", "0.01"]),
        ]
        for label, extra in configs:
            progress(f"fsd {label} ...")
            metrics, info = measure_fsd(label, extra, broker, client, opts.runs, opts.warmup)
            info["results"] = metrics.as_dict()
            doc["fsd"].append(info)
        assert broker.pid is not None
        doc["broker_rss"] = psutil.Process(broker.pid).memory_info().rss
        doc["machine"]["loadavg_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        doc["elapsed_s"] = time.monotonic() - started
        ok = True
    except BenchError as exc:
        print(f"bench_supervision: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("bench_supervision: interrupted", file=sys.stderr)
    finally:
        if client is not None:
            client.close()
        progress("stopping the broker ...")
        broker.stop()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"broker data and log kept in {root}", file=sys.stderr)
    if not ok:
        return 1
    print_results(doc, opts.json, print_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
