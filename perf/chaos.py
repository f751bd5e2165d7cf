"""Chaos soak: numbered records through a real fsd while replicas, the broker and fsd die.

Not a benchmark and not a test (it takes minutes): the check behind the claim in
docs/guarantees.md that a single host loses nothing when its processes are
killed, rerunnable at any revision. For each guarantee asked for:

* one fsd with its embedded Pulsar (own ports, a temp state dir) and
  examples/basic (C) with ``--replicas`` replicas (effectively-once with one
  replica and ``--ordering strict``, which it needs);
* a producer sends records 0..N-1 at ``--rate`` per second with no send timeout,
  so it rides out the broker's absence; a send the broker refused is counted and
  sent again at the end, so every record is produced exactly as far as the
  broker confirmed it;
* while it produces: SIGKILL to a random RUNNING replica every ``--kill-every``
  seconds; at a third of the records SIGKILL to the broker's JVM (fsd restarts
  it); at two thirds SIGKILL to fsd itself (its workers and broker die with it)
  and a new fsd on the same state dir, which restores the function;
* then every record's output is awaited on a subscription made before the first
  record, and lost and duplicate records are counted.

    python perf/chaos.py [--messages 100000] [--rate 2000] [--replicas 2]
        [--kill-every 2.0] [--guarantee at-least-once --guarantee effectively-once]
        [--json]

Exit 0 when no record was lost and effectively-once had no duplicate; 1 when
one was (the state dir and logs are kept and named); 2 on a usage error.
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
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import pulsar  # noqa: E402

from perf.harness import BenchError, interrupt, machine_info, progress  # noqa: E402
from tests.helpers import EXAMPLES, Fsd, free_port, unique  # noqa: E402
from tests.streams import OutputCollector, client, paced, person, report  # noqa: E402

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")
FSD_START_S = 240.0  # an fsd start includes its broker's (a JVM, slower on a busy machine)


class ConfirmedProducer(threading.Thread):
    """Sends records 0..count-1 at ``rate``/s; knows which ones the broker confirmed."""

    def __init__(self, url: str, topic: str, count: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.topic, self.count, self.rate = url, topic, count, rate
        self.sent = 0
        self.refused: list[int] = []  # records whose send failed (sent again at the end)
        self.resent = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        c = client(self.url)
        try:
            # No send timeout: a send waits for the broker to come back instead of failing.
            producer = c.create_producer(
                self.topic,
                batching_enabled=True,
                batching_max_publish_delay_ms=5,
                block_if_queue_full=True,
                send_timeout_millis=0,
            )
            for i in paced(self.count, self.rate):
                producer.send_async(person(i), self._on_sent(i))
                self.sent = i + 1
            producer.flush()
            while True:
                with self._lock:
                    again, self.refused = self.refused, []
                if not again:
                    break
                for i in again:
                    producer.send_async(person(i), self._on_sent(i))
                    self.resent += 1
                producer.flush()
            producer.close()
        except BaseException as exc:  # reported by the run
            self.error = exc
        finally:
            c.close()

    def _on_sent(self, i: int) -> Any:
        def done(result: pulsar.Result, _msg_id: Any) -> None:
            if result != pulsar.Result.Ok:
                with self._lock:
                    self.refused.append(i)

        return done


class Chaos:
    """The killer: replicas on a timer, the broker and fsd once each at fixed points."""

    def __init__(self, fsd: Fsd, name: str, every: float, seed: int) -> None:
        self.fsd, self.name, self.every = fsd, name, every
        self.rng = random.Random(seed)
        self.replica_kills = 0
        self.broker_killed = self.fsd_killed = False
        self.events: list[str] = []

    def kill_a_replica(self) -> None:
        """SIGKILL one RUNNING replica, if fsd answers and one runs."""
        try:
            running = [r for r in self.fsd.replicas(self.name) if r["state"] == "RUNNING"]
        except (AssertionError, OSError, ValueError, IndexError):
            return  # fsd or its broker is away: nothing to pick from
        if running:
            os.kill(self.rng.choice(running)["pid"], signal.SIGKILL)
            self.replica_kills += 1

    def kill_the_broker(self) -> None:
        pid = self.fsd.ctl_json("info")["broker_pid"]
        os.kill(pid, signal.SIGKILL)
        self.broker_killed = True
        self.events.append(f"broker JVM {pid} killed")
        progress(f"    SIGKILL to the broker (pid {pid}); fsd restarts it")

    def kill_fsd(self) -> None:
        progress("    SIGKILL to fsd; starting a new one on the same state dir ...")
        self.fsd.kill()
        began = time.monotonic()
        self.fsd.start(timeout=FSD_START_S)
        self.fsd_killed = True
        self.events.append(f"fsd killed, back in {time.monotonic() - began:.1f} s")
        progress(f"    fsd answers again after {time.monotonic() - began:.1f} s")


def run_once(opts: argparse.Namespace, guarantee: str) -> dict[str, Any]:
    """One fsd, one function, the kills; what came out."""
    workdir = Path(tempfile.mkdtemp(prefix="fs-chaos-", dir="/tmp"))  # short ipc path
    ports = ["--pulsar-port", str(free_port()), "--pulsar-web-port", str(free_port())]
    fsd = Fsd(workdir, None, extra=[*ports, "--max-restarts", "1000"])
    progress(f"{guarantee}: starting fsd and its broker in {workdir} ...")
    fsd.start(timeout=FSD_START_S)
    try:
        return _soak(opts, guarantee, fsd, workdir)
    finally:
        fsd.kill()  # after an error; a finished run has stopped it already


def _soak(opts: argparse.Namespace, guarantee: str, fsd: Fsd, workdir: Path) -> dict[str, Any]:
    url = fsd.ctl_json("info")["pulsar_url"]
    name, inp, out = unique("chaos"), unique("in"), unique("out")
    collector = OutputCollector(url, out)
    args = ["create", "-n", name, "-a", BASIC, "-i", inp, "-o", out]
    args += ["--guarantee", guarantee]
    if guarantee == "effectively-once":
        args += ["-r", "1", "--ordering", "strict"]  # what it runs with (docs/guarantees.md)
    else:
        args += ["-r", str(opts.replicas)]
    created = fsd.ctl(*args)
    if created.returncode != 0:
        raise BenchError(f"fsctl create failed: {created.stderr.strip()}")
    producer = ConfirmedProducer(url, inp, opts.messages, opts.rate)
    chaos = Chaos(fsd, name, opts.kill_every, seed=opts.seed)
    began = time.monotonic()
    producer.start()
    next_kill = time.monotonic() + opts.kill_every
    while producer.is_alive():
        time.sleep(0.05)
        if not chaos.broker_killed and producer.sent >= opts.messages // 3:
            chaos.kill_the_broker()
        elif not chaos.fsd_killed and producer.sent >= 2 * opts.messages // 3:
            chaos.kill_fsd()
        elif time.monotonic() >= next_kill:
            chaos.kill_a_replica()
            next_kill = time.monotonic() + opts.kill_every
    if producer.error is not None:
        raise BenchError(f"the producer failed: {producer.error!r}")
    produced_s = time.monotonic() - began
    progress(
        f"    produced {opts.messages:,} records in {produced_s:.0f} s "
        f"({producer.resent} sent again after a refusal); collecting ..."
    )
    seen = collector.collect_until(opts.messages, opts.collect_timeout, quiet=5.0)
    collector.close()
    with contextlib.redirect_stdout(sys.stderr):  # its summary line: progress, not the report
        missing, duplicates = report(seen, opts.messages)
    status = fsd.status(name)
    fsd.stop()
    result = {
        "guarantee": guarantee,
        "records": opts.messages,
        "lost": len(missing),
        "lost (first 10)": missing[:10],
        "duplicates": duplicates,
        "replica kills": chaos.replica_kills,
        "events": chaos.events,
        "sent again after a refusal": producer.resent,
        "seconds producing": round(produced_s, 1),
        "dead-lettered": sum(r.get("dead_lettered", 0) for r in status["replicas"]),
        "state dir": str(workdir),
    }
    ok = not missing and (guarantee != "effectively-once" or duplicates == 0)
    result["passed"] = ok
    if ok and not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        result["state dir"] = "(removed)"
    return result


def print_report(doc: dict[str, Any]) -> None:
    m = doc["machine"]
    print(f"Chaos soak on {m['nproc']} CPUs ({m['cpu']}), load {m['loadavg_start']} at start")
    for r in doc["runs"]:
        verdict = "passed" if r["passed"] else "FAILED"
        print(
            f"  {r['guarantee']:<17} {verdict}: {r['records']:,} records, {r['lost']} lost, "
            f"{r['duplicates']} duplicates, {r['replica kills']} replica kills, "
            f"{'; '.join(r['events'])}; {r['dead-lettered']} dead-lettered"
        )
        if r["lost"]:
            print(
                f"    lost, first ones: {', '.join(r['lost (first 10)'])}; kept: {r['state dir']}"
            )
    print(f"(total {doc['elapsed_s']:.0f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="records per second")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=2.0, help="seconds between kills")
    parser.add_argument(
        "--guarantee",
        action="append",
        choices=["at-least-once", "effectively-once"],
        help="repeatable (default: both)",
    )
    parser.add_argument("--collect-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the state dirs of passed runs")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    if opts.messages < 30 or opts.rate <= 0 or opts.replicas < 1 or opts.kill_every <= 0:
        parser.error("--messages >= 30, --rate > 0, --replicas >= 1, --kill-every > 0")
    guarantees = opts.guarantee or ["at-least-once", "effectively-once"]
    signal.signal(signal.SIGTERM, interrupt)
    doc: dict[str, Any] = {"machine": machine_info(), "runs": []}
    began = time.monotonic()
    try:
        for guarantee in guarantees:
            doc["runs"].append(run_once(opts, guarantee))
    except BenchError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 1
    doc["elapsed_s"] = round(time.monotonic() - began, 1)
    if opts.json:
        print(json.dumps(doc, indent=2))
    else:
        print_report(doc)
    return 0 if all(r["passed"] for r in doc["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
