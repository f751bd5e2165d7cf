"""Cluster-mode benchmark: failover times, create -> first output, throughput spread vs one member.

Runs against an existing broker (``--pulsar-url`` / ``--admin-url``, default the
FS_TEST_PULSAR_URL / FS_TEST_PULSAR_ADMIN_URL environment), never starts or stops it.
Three fsd members of one cluster stand in for three hosts on this one machine
(``tests.integration.test_cluster.Cluster``), beside one single-host fsd. Each
figure is printed next to a baseline measured in the same run:

1. member kill -9 -> its replicas RUNNING on other members, with the default
   member_timeout 10 s / heartbeat 2 s and with 3 s / 0.5 s; baseline: replica
   kill -9 -> RUNNING again on one single-host fsd;
2. leader kill -9 -> a new leader (``members`` leader_id, the request behind
   ``fsctl members --json``), same two timing settings; beside it the time the
   settings themselves imply (member_timeout);
3. create -> first output of examples/basic/c/basic.wasm, cluster vs single host;
4. draining a pre-produced backlog through one function with 3 replicas, all on
   one member (the other two members stopped while it runs) vs spread over three
   members, beside the raw pass-through ceiling of perf/bench_throughput.py.
   On one machine this shows the cluster's overhead, never a speed-up.

It never asserts timings: it exits 0 unless something failed to work (then 1,
keeping the fsd state dirs and logs and naming where).

    python perf/bench_cluster.py [--rounds N] [--messages N] [--quick] [--json]
        [--pulsar-url URL] [--admin-url URL] [--skip-default-timings]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import psutil  # noqa: E402
import pulsar  # noqa: E402

from fscommon import logs  # noqa: E402
from fsctl.client import call  # noqa: E402
from perf.bench_supervision import Metrics, OutputWatch, record  # noqa: E402
from perf.bench_throughput import Env, throughput_fs, throughput_raw, wait_quiet  # noqa: E402
from perf.harness import (  # noqa: E402
    BenchError,
    interrupt,
    machine_info,
    print_results,
    progress,
    summary,
)
from tests.helpers import Fsd, unique, wait_for  # noqa: E402
from tests.integration.test_cluster import Cluster  # noqa: E402
from tests.streams import client as pulsar_client  # noqa: E402

WASM = REPO / "examples" / "basic" / "c" / "basic.wasm"
POLL_S = 0.05  # status / members polling interval while timing a recovery
TIMEOUT_S = 90.0  # anything slower than this is broken, not slow
# (label, member_timeout, heartbeat): the defaults, and the short ones the tests use.
TIMINGS = [
    ("default (T 10 s, heartbeat 2 s)", 10.0, 2.0),
    ("short (T 3 s, heartbeat 0.5 s)", 3.0, 0.5),
]
MEMBERS = ("a", "b", "c")


@dataclass
class SharedBroker:
    """What perf.bench_throughput.Env reads from a broker, for one we did not start."""

    url: str
    admin_url: str
    pid: int


def broker_pid(url: str) -> int:
    """The pid listening on the broker's port, for its CPU per message.

    When it cannot be found (another user's broker, another host) this returns a pid
    that cannot exist (pid_max), so bench_throughput's CPU accounting reports the
    broker's share as missing instead of failing.
    """
    port = urlparse(url).port
    try:
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.laddr
            if listening and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.Error:
        pass
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def poll(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
    """tests.helpers.wait_for at benchmark resolution, failing as a BenchError."""
    try:
        return wait_for(predicate, timeout, what, interval=POLL_S)
    except AssertionError as exc:
        raise BenchError(str(exc)) from None


def replicas(fsd: Fsd, name: str) -> list[dict[str, Any]]:
    """Replica views of ``name`` as ``fsd`` reports them (a member: every member's)."""
    return call(fsd.endpoint, "status", {"name": name})[0]["replicas"]


def placement(fsd: Fsd, name: str) -> dict[int, str]:
    """replica -> member, for RUNNING replicas (the control protocol, not the CLI, so a
    poll costs milliseconds and the timing resolution stays POLL_S)."""
    return {r["replica"]: r.get("member") for r in replicas(fsd, name) if r["state"] == "RUNNING"}


def leader(fsd: Fsd) -> str | None:
    """leader_id as ``fsctl members --json`` prints it (the same request)."""
    return call(fsd.endpoint, "members")["leader_id"]


def live_members(fsd: Fsd) -> list[str]:
    return sorted(m["member_id"] for m in call(fsd.endpoint, "members")["members"])


def create(fsd: Fsd, name: str, inp: str, out: str, count: int) -> None:
    """``fsctl create`` (returns once every replica is RUNNING)."""
    result = fsd.ctl("create", "-n", name, "-a", str(WASM), "-i", inp, "-o", out, "-r", str(count))
    if result.returncode != 0:
        raise BenchError(f"fsctl create {name} failed: {result.stderr.strip()}")


def delete(fsd: Fsd, name: str) -> None:
    try:
        call(fsd.endpoint, "delete", {"name": name}, timeout=60)
    except Exception as exc:  # report, but let the real error (if any) through
        progress(f"warning: delete {name} failed: {exc}")


# --- 1. baseline: replica kill -9 on a single host ----------------------------------------


def replica_kill_single(fsd: Fsd, out: Metrics) -> None:
    """One replica of a fresh function, kill -9 its worker, until RUNNING with a new pid."""
    name = unique("bcl-r")
    create(fsd, name, f"{name}-in", f"{name}-out", 1)
    try:
        pid = replicas(fsd, name)[0]["pid"]
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        poll(
            lambda: (r := replicas(fsd, name)[0])["state"] == "RUNNING" and r["pid"] != pid,
            f"{name} RUNNING again after kill -9",
        )
        out.add("replica kill -9 -> RUNNING again", time.monotonic() - killed)
    finally:
        delete(fsd, name)


# --- 1 + 2. member and leader kill in a cluster -------------------------------------------


def restart_member(cluster: Cluster, member: str, via: str) -> None:
    """Start a killed member again (a new incarnation); wait until ``via`` sees it and it
    sees every member and the leader itself.

    The second wait matters: a member reads heartbeats from its start on, so one that never
    heard the leader before the leader dies does not wait member_timeout for it; it takes
    over after its listening window (min(T, 3 heartbeats)). Killing the leader right after
    a rejoin measured exactly that (6.0 s with T = 10 s), not the steady-state takeover.
    """
    cluster.start(member)
    poll(lambda: member in live_members(cluster.members[via]), f"{member} to rejoin")
    rejoined = cluster.members[member]
    poll(
        lambda: live_members(rejoined) == list(MEMBERS) and leader(rejoined) is not None,
        f"{member} to hear every member and the leader",
    )


def failover_round(cluster: Cluster, out: Metrics) -> None:
    """A fresh 3-replica function spread over a, b, c; kill -9 a member that does not lead,
    then (once it rejoined) the leader; time what a surviving member reports."""
    name = unique("bcl-f")
    first = cluster.members["a"]
    create(first, name, f"{name}-in", f"{name}-out", 3)
    try:
        poll(lambda: len(set(placement(first, name).values())) == 3, f"{name} spread over 3")

        # A member that does not lead, so no election is in this figure.
        boss = leader(first)
        victim = next(m for m in MEMBERS if m != boss)
        seer = next(m for m in MEMBERS if m != victim)
        watcher = cluster.members[seer]
        killed = time.monotonic()
        cluster.members[victim].kill()
        poll(
            lambda: len(p := placement(watcher, name)) == 3 and victim not in p.values(),
            f"{victim}'s replica RUNNING on another member",
        )
        out.add("member kill -9 -> its replica RUNNING elsewhere", time.monotonic() - killed)
        restart_member(cluster, victim, seer)

        # Whoever leads now; its replica moves too, after the election.
        old = leader(watcher)
        if old is None:
            raise BenchError("no leader before the leader kill")
        seer = next(m for m in MEMBERS if m != old)
        watcher = cluster.members[seer]
        killed = time.monotonic()
        cluster.members[old].kill()
        poll(lambda: leader(watcher) not in (None, old), "a new leader")
        out.add("leader kill -9 -> new leader (members leader_id)", time.monotonic() - killed)
        poll(
            lambda: len(p := placement(watcher, name)) == 3 and old not in p.values(),
            f"the old leader {old}'s replica RUNNING elsewhere",
        )
        out.add("leader kill -9 -> its replica RUNNING elsewhere", time.monotonic() - killed)
        restart_member(cluster, old, seer)
    finally:
        delete(cluster.members[seer], name)


# --- 3. create -> first output ------------------------------------------------------------


def create_to_output(fsd: Fsd, client: pulsar.Client, label: str, out: Metrics) -> None:
    """A message waits on the input topic and a subscription on the output topic before
    ``fsctl create`` starts; time from its start to that message's output (bench_supervision's
    figure, so the single-host number can be read against perf/README.md)."""
    name = unique("bcl-c")
    inp, outp = f"{name}-in", f"{name}-out"
    producer = client.create_producer(inp)
    watch = OutputWatch(client, outp)
    done: dict[str, Any] = {}

    def run() -> None:
        done["result"] = fsd.ctl("create", "-n", name, "-a", str(WASM), "-i", inp, "-o", outp)
        done["at"] = time.monotonic()

    try:
        producer.send(record("pre"))
        started = time.monotonic()
        creator = threading.Thread(target=run, daemon=True)
        creator.start()
        first = watch.wait_for({"pre"}, TIMEOUT_S)["pre"]
        creator.join(TIMEOUT_S)
        result: subprocess.CompletedProcess[str] | None = done.get("result")
        if result is None or result.returncode != 0:
            raise BenchError(f"fsctl create {name} ({label}) failed: {result and result.stderr}")
        out.add(f"create -> first output, {label}", first - started)
        out.add(f"fsctl create (until RUNNING), {label}", done["at"] - started)
    finally:
        watch.close()
        producer.close()
        delete(fsd, name)


# --- 4. throughput ------------------------------------------------------------------------


def throughput_round(
    cluster: Cluster, env: Env, out: dict[str, list[dict[str, Any]]], busy: Metrics
) -> None:
    """The raw ceiling, 3 replicas spread over a, b, c, then 3 replicas on a alone (b and c
    stopped cleanly, so they leave at once; started again afterwards). The function is
    created through a each time, so fsctl and the status polls take the same path."""
    busy.add("machine CPU busy before a drain (%)", wait_quiet(max_wait=15))
    out["raw pass-through (JSON), one process"].append(throughput_raw(env, "JSON"))
    poll(lambda: live_members(cluster.members["a"]) == list(MEMBERS), "3 live members")
    busy.add("machine CPU busy before a drain (%)", wait_quiet(max_wait=15))
    out["3 replicas spread over 3 members"].append(throughput_fs(env, WASM, "JSON", 3))
    for member in ("b", "c"):
        cluster.members[member].stop()
    poll(lambda: live_members(cluster.members["a"]) == ["a"], "a alone")
    busy.add("machine CPU busy before a drain (%)", wait_quiet(max_wait=15))
    try:
        out["3 replicas on 1 member (b, c stopped)"].append(throughput_fs(env, WASM, "JSON", 3))
    finally:
        cluster.start("b", "c")


# --- runs ---------------------------------------------------------------------------------


def new_cluster(root: Path, url: str, timeout: float, heartbeat: float) -> Cluster:
    """Three members (the test helper's Cluster); our timings appended to its flags, since
    the last occurrence of a flag wins."""
    cluster = Cluster(root, url, unique("bench"))
    for fsd in cluster.members.values():
        fsd.extra += ["--member-timeout", str(timeout), "--member-heartbeat", str(heartbeat)]
    cluster.start()
    poll(lambda: leader(cluster.members["a"]), "a leader to be elected", timeout=60)
    poll(lambda: live_members(cluster.members["a"]) == list(MEMBERS), "3 live members")
    return cluster


def run(opts: argparse.Namespace, root: Path, doc: dict[str, Any]) -> None:
    """Every measurement; fills ``doc``. Members and fsd are stopped before returning."""
    client = pulsar_client(opts.pulsar_url)
    single = Fsd(root / "single", opts.pulsar_url)
    (root / "single").mkdir()
    clusters: list[Cluster] = []
    try:
        base = Metrics()
        progress("single-host fsd and a 3-member cluster (default timings) ...")
        single.start()
        (root / "default").mkdir()
        cluster = new_cluster(root / "default", opts.pulsar_url, 10.0, 2.0)
        clusters.append(cluster)

        # 3. alternating, so noise on the shared machine hits both alike; one warm-up each
        # (the first create compiles the module into each state dir's cache).
        create_s = Metrics()
        for i in range(opts.rounds + 1):
            progress(f"  create -> first output, round {i + 1 if i else 'warm-up'}")
            sink = create_s if i else Metrics()
            create_to_output(single, client, "single-host fsd", sink)
            create_to_output(cluster.members["a"], client, "cluster of 3", sink)
        doc["create"] = create_s.as_dict()

        # 1. baseline.
        for i in range(opts.rounds):
            progress(f"  single host: replica kill -9, round {i + 1}")
            replica_kill_single(single, base)
        single.stop()
        doc["baseline"] = base.as_dict()

        # 4. throughput (the single-host fsd is stopped: it would only add noise).
        env = Env(
            SharedBroker(opts.pulsar_url, opts.admin_url, broker_pid(opts.pulsar_url)),  # type: ignore[arg-type]
            client,
            cluster.members["a"],
            root,
            opts.messages,
        )
        paths = (
            "raw pass-through (JSON), one process",
            "3 replicas spread over 3 members",
            "3 replicas on 1 member (b, c stopped)",
        )
        tp: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
        busy = Metrics()
        for i in range(opts.rounds):
            progress(f"  throughput, {opts.messages:,} messages, round {i + 1}")
            throughput_round(cluster, env, tp, busy)
        doc["throughput"] = {p: _by_key(runs) for p, runs in tp.items()}
        doc["busy_before_drain"] = busy.as_dict()
        poll(lambda: live_members(cluster.members["a"]) == list(MEMBERS), "3 live members")

        # 1. + 2. with each timing setting; the default cluster is already up.
        doc["failover"] = []
        for label, timeout, heartbeat in TIMINGS:
            if opts.skip_default_timings and timeout == 10.0:
                continue
            if timeout != 10.0:
                cluster.stop()
                (root / "short").mkdir()
                cluster = new_cluster(root / "short", opts.pulsar_url, timeout, heartbeat)
                clusters.append(cluster)
            fo = Metrics()
            for i in range(opts.rounds):
                progress(f"  {label}: member kill, leader kill, round {i + 1}")
                failover_round(cluster, fo)
            doc["failover"].append(
                {
                    "label": label,
                    "member_timeout": timeout,
                    "heartbeat": heartbeat,
                    "results": fo.as_dict(),
                }
            )
    except BaseException:
        doc["keep"] = True
        for fsd in [single, *(f for c in clusters for f in c.members.values())]:
            if fsd.proc is not None:
                print(f"{fsd.log_path} tail:\n{fsd.log_tail(15)}", file=sys.stderr)
        raise
    finally:
        for c in clusters:
            c.stop()
        if single.proc is not None and single.proc.poll() is None:
            single.stop()
        client.close()


def _by_key(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """bench_throughput's per-run result dicts -> one summary per figure."""
    keys = dict.fromkeys(k for r in runs for k in r)
    return {k: summary([r[k] for r in runs if r.get(k) is not None]) for k in keys}


# --- report -------------------------------------------------------------------------------

W = 58  # label column


def _line(label: str, st: dict[str, Any], fmt: str = "{:8.2f}", note: str = "") -> str:
    def f(v: float | None) -> str:
        return f"{'-':>8}" if v is None else fmt.format(v)

    text = f"  {label:<{W}} {st['n']:>2} {f(st['median'])} {f(st['min'])} {f(st['max'])}"
    return text + (f"  {note}" if note else "")


def print_report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(
        f"Function Stream cluster benchmark: --rounds {doc['rounds']}, "
        f"--messages {doc['messages']:,}; 3 members and 1 single-host fsd on one machine"
    )
    print(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"broker {doc['pulsar_url']} (shared, not started by us), "
        f"pulsar-client {m['pulsar_client']}, wasmtime {m['wasmtime']}"
    )
    print(f"load average: {m['loadavg_start']} at start, {m['loadavg_end']} at end")
    print()
    print(f"  {'seconds':<{W}} {'n':>2} {'median':>8} {'min':>8} {'max':>8}")
    base = doc["baseline"]["replica kill -9 -> RUNNING again"]
    print("Failover (baseline: single-host fsd, replica kill -9 -> RUNNING again)")
    print(_line("single host: replica kill -9 -> RUNNING again", base))
    for fo in doc["failover"]:
        print(f"cluster, {fo['label']}  (T + one worker start is what the design implies)")
        for label, st in fo["results"].items():
            note = ""
            if st["median"] is not None and base["median"]:
                over = st["median"] - fo["member_timeout"]
                note = f"T {over:+.2f} s; {st['median'] / base['median']:.0f}x the baseline"
            print(_line(label, st, note=note))
    print("Create -> first output (examples/basic/c, 1 replica; created through member a)")
    cr = doc["create"]
    for label, st in cr.items():
        print(_line(label, st))
    one = cr.get("create -> first output, single-host fsd", {}).get("median")
    many = cr.get("create -> first output, cluster of 3", {}).get("median")
    if one and many:
        print(f"  cluster / single host: {many / one:.2f}x ({many - one:+.2f} s)")
    print()
    print(
        f"Throughput, one function (examples/basic/c, JSON records), draining "
        f"{doc['messages']:,} pre-produced messages; msg/s between 10 % and 90 %"
    )
    print(f"  {'msg/s':<{W}} {'n':>2} {'median':>8} {'min':>8} {'max':>8}")
    tp = doc["throughput"]
    ceiling = tp["raw pass-through (JSON), one process"]["msg/s (10-90 %)"]["median"]
    for path, res in tp.items():
        st = res["msg/s (10-90 %)"]
        note = ""
        if ceiling and st["median"] is not None:
            note = f"{100 * st['median'] / ceiling:.0f} % of the raw ceiling"
        cpu = res.get("CPU us/msg: measured processes", {}).get("median")
        if cpu is not None:
            note += f"; {cpu:.1f} us CPU/msg in the measured process(es)"
        elif "spread" in path:  # member a's status has no pids of other members' replicas
            note += "; replica CPU n/a (pids on other members)"
        print(_line(path, st, "{:8,.0f}", note))
    print("  On one machine the three members share the same 2 CPUs and broker: spreading")
    print("  replicas over members shows the cluster's overhead here, never a speed-up.")
    busy = doc["busy_before_drain"]["machine CPU busy before a drain (%)"]
    print(
        f"  machine CPU busy before each drain: median {busy['median']:.0f} %, "
        f"max {busy['max']:.0f} % (other load on the shared machine)"
    )


# --- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each part (default 2)")
    parser.add_argument("--messages", type=int, help="backlog (default 100k; --quick 20k)")
    parser.add_argument("--quick", action="store_true", help="1 round, 20k messages, 1 timing")
    parser.add_argument(
        "--skip-default-timings",
        action="store_true",
        help="failover only with T 3 s / heartbeat 0.5 s (saves ~1 min)",
    )
    parser.add_argument("--pulsar-url", default=os.environ.get("FS_TEST_PULSAR_URL"))
    parser.add_argument("--admin-url", default=os.environ.get("FS_TEST_PULSAR_ADMIN_URL"))
    parser.add_argument("--json", action="store_true", help="print a JSON document instead")
    opts = parser.parse_args()
    if opts.quick:  # checks that everything works; too few samples for figures
        opts.rounds, opts.skip_default_timings = 1, True
    if opts.messages is None:
        opts.messages = 20_000 if opts.quick else 100_000
    if opts.rounds < 1 or opts.messages < 100:
        parser.error("--rounds must be >= 1 and --messages >= 100")
    if not opts.pulsar_url or not opts.admin_url:
        parser.error(
            "needs --pulsar-url and --admin-url (or FS_TEST_PULSAR_URL and "
            "FS_TEST_PULSAR_ADMIN_URL): an existing broker"
        )
    logs.configure("warning")
    signal.signal(signal.SIGTERM, interrupt)
    # tests.helpers.Fsd passes this to every fsd it starts; members need it for the namespace.
    os.environ["FS_TEST_PULSAR_ADMIN_URL"] = opts.admin_url

    doc: dict[str, Any] = {
        "rounds": opts.rounds,
        "messages": opts.messages,
        "pulsar_url": opts.pulsar_url,
        "machine": machine_info(),
    }
    root = Path(tempfile.mkdtemp(prefix="fs-bench-cluster-", dir="/tmp"))
    started = time.monotonic()
    ok = False
    try:
        run(opts, root, doc)
        doc["machine"]["loadavg_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        doc["elapsed_s"] = time.monotonic() - started
        doc["broker_start_s"] = 0.0  # print_results prints it; this broker was already up
        ok = True
    except BenchError as exc:
        print(f"bench_cluster: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("bench_cluster: interrupted", file=sys.stderr)
    finally:
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"fsd state dirs and logs kept in {root}", file=sys.stderr)
    if not ok:
        return 1
    print_results(doc, opts.json, print_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
