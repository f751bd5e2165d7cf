"""Data-path benchmark: broker limit, raw pass-through ceiling, Function Stream throughput, latency.

Starts one real Pulsar standalone (on free ports, data in a temp dir) and one fsd
against it, then measures, each figure next to a baseline from the same run on
the same broker:

1. the broker's own limit with pulsar-perf (100-byte messages): produce for a
   fixed time, then consume that backlog;
2. the raw at-least-once pass-through ceiling: a plain pulsar-client consumer ->
   producer loop in one separate process (no wasm), batched like fsworker
   (receive one, take up to 1000 queued, send_async each, flush, then ack), and
   the same loop doing examples/basic's job in Python (the hand-written loop a
   user would write instead of a function);
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
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import pulsar  # noqa: E402
import wasmtime  # noqa: E402

from fscommon import logs  # noqa: E402
from fsd.broker import PULSAR_VERSION, EmbeddedPulsar  # noqa: E402
from perf.harness import (  # noqa: E402
    BenchError,
    interrupt,
    machine_info,
    print_results,
    progress,
    summary,
)
from perf.tp_broker_limit import broker_limit  # noqa: E402
from perf.tp_drain import (  # noqa: E402
    machine_busy,
    wait_quiet,
)
from perf.tp_paths import (  # noqa: E402
    BASIC_WASM,
    BEFORE,
    DIRECT,
    Env,
    latency_run,
    throughput_fs,
    throughput_raw,
)
from perf.tp_report import HAND, LATENCY_RATE, RAW, _med, _num, print_report  # noqa: E402
from tests.helpers import Fsd, free_port  # noqa: E402
from tests.streams import client as pulsar_client  # noqa: E402
from tests.wasm_fixtures import BATCH_ECHO  # noqa: E402

BEFORE_SRC = "before-src"  # the --before checkout, under the benchmark's directory
BEFORE_LANGUAGES = ("c", "python", "js")  # --before: the languages also run on the old code


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


# --- main ---------------------------------------------------------------------------------


def run_all(env: Env, opts: argparse.Namespace, doc: dict[str, Any]) -> None:
    if "broker" in opts.only and not opts.no_pulsar_perf:
        progress("broker limit (pulsar-perf) ...")
        busy = wait_quiet(max_wait=opts.quiet_wait)
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
        if env.before is not None:
            paths += ((f"FS basic JSON, 1 replica ({opts.before_label})", BEFORE),)
        # Rounds alternate the paths, so a broker still warming up or a burst of other load
        # hits all of them alike; each figure is the median over the rounds.
        rounds: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in paths}
        for n in range(opts.latency_rounds):
            for label, through in paths:
                progress(
                    f"latency round {n + 1}/{opts.latency_rounds}: {label}, "
                    f"{LATENCY_RATE} msg/s for {opts.latency_seconds:.0f} s ..."
                )
                busy = wait_quiet(max_wait=opts.quiet_wait)
                res = latency_run(env, through, opts.latency_seconds)
                res["machine CPU busy just before (%)"] = busy
                rounds[label].append(res)
                progress(
                    f"    p50 {res['p50 ms']:.2f} ms, p99 {res['p99 ms']:.2f} ms, "
                    f"max {res['max ms']:.2f} ms, lost {res['lost']}"
                )
        for label, results in rounds.items():
            doc["latency"][label] = _median_of_rounds(results)


def _median_of_rounds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One latency row: the median of each number over the rounds, and every round's p99."""
    row: dict[str, Any] = {}
    for key, value in results[0].items():
        values = [r[key] for r in results if isinstance(r.get(key), int | float)]
        row[key] = statistics.median(values) if len(values) == len(results) else value
    row["p99 ms rounds"] = [r["p99 ms"] for r in results]
    return row


def throughput_all(env: Env, opts: argparse.Namespace, doc: dict[str, Any]) -> None:

    echo_wasm = env.workdir / "echo.wasm"
    echo_wasm.write_bytes(wasmtime.wat2wasm(BATCH_ECHO))
    raw100, raw_json = f"{RAW}, 100 B", f"{RAW}, JSON"
    paths: list[tuple[str, Callable[[], dict[str, float | None]]]] = [
        (raw100, lambda: throughput_raw(env, "100 B"))
    ]
    before = env.before is not None
    for label, wasm, payload in (
        ("FS echo 100 B", echo_wasm, "100 B"),
        ("FS basic JSON", BASIC_WASM, "JSON"),
    ):
        if payload == "JSON":
            paths.append((raw_json, lambda: throughput_raw(env, "JSON")))
            paths.append((f"{HAND}, JSON", lambda: throughput_raw(env, "JSON", "basic")))
        for r in opts.replicas:
            name = f"{label}, {r} replica{'s' if r > 1 else ''}"
            paths.append((name, lambda r=r, w=wasm, p=payload: throughput_fs(env, w, p, r)))
            if before and r == 1:
                paths.append(
                    (
                        f"{name} ({opts.before_label})",
                        lambda w=wasm, p=payload: throughput_fs(env, w, p, 1, before=True),
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
        if opts.languages and lang not in opts.languages:
            continue
        paths.append(
            (f"FS basic {lang}, 1 replica", lambda w=wasm: throughput_fs(env, w, "JSON", 1))
        )
        if env.before is not None and lang in BEFORE_LANGUAGES:
            # The old code runs its own build of the example (a component built for a
            # newer WIT world may not load there); start_before unpacks it beside its fsd.
            old = env.before.workdir.parent / BEFORE_SRC / wasm.relative_to(REPO)
            old = old if old.exists() else wasm
            paths.append(
                (
                    f"FS basic {lang}, 1 replica ({opts.before_label})",
                    lambda w=old: throughput_fs(env, w, "JSON", 1, before=True),
                )
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
            busy = wait_quiet(max_wait=opts.quiet_wait)
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


def start_before(opts: argparse.Namespace, root: Path, broker: EmbeddedPulsar) -> Fsd:
    """An fsd (and so its workers and fsctl) running the code of git revision opts.before."""
    tree = root / BEFORE_SRC
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", opts.before], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise BenchError(f"git archive {opts.before}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    fsd = Fsd(
        root / "fsd-before",
        broker.url,
        extra=["--pulsar-admin-url", broker.admin_url],
        env={"PYTHONPATH": str(tree)},
    )
    fsd.workdir.mkdir(parents=True, exist_ok=True)
    progress(f"starting a second fsd on {opts.before_label} ...")
    fsd.start()
    return fsd


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
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        metavar="S",
        help="wait up to S seconds before each path for other load on the machine to pass (60)",
    )
    parser.add_argument(
        "--languages",
        help="only these examples/basic languages, comma-separated (default: every one)",
    )
    parser.add_argument(
        "--replicas",
        default="1,2,4",
        help="replica counts of the FS throughput paths, comma-separated (1,2,4)",
    )
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also run the 1-replica paths and the latency on the code of git revision REV "
        "(a second fsd from `git archive REV`, same broker, alternating): before/after figures",
    )
    parser.add_argument(
        "--latency-rounds",
        type=int,
        metavar="N",
        help="latency rounds, alternating the paths; medians reported (3; --quick 1)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document instead")
    opts = parser.parse_args()
    opts.messages = opts.messages or (50_000 if opts.quick else 200_000)
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.latency_seconds = 10.0 if opts.quick else 20.0
    opts.latency_rounds = opts.latency_rounds or (1 if opts.quick else 3)
    opts.only = opts.only or ["broker", "throughput", "languages", "latency"]
    opts.perf_seconds = 10
    opts.languages = opts.languages.split(",") if opts.languages else None
    try:
        opts.replicas = [int(r) for r in opts.replicas.split(",")]
    except ValueError:
        parser.error("--replicas takes numbers, e.g. 1,2,4")
    opts.before_label = f"before: {opts.before}" if opts.before else None
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
        "before": opts.before,
        "latency_seconds": opts.latency_seconds,
        "machine": machine_info(),
    }
    root = Path(tempfile.mkdtemp(prefix="fs-bench-tp-"))
    broker = BenchPulsar(data_dir=root / "pulsar", broker_port=free_port(), web_port=free_port())
    broker.extra_conf = tuple(opts.broker_conf)
    client: pulsar.Client | None = None
    fsd: Fsd | None = None
    before: Fsd | None = None
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
        before = start_before(opts, root, broker) if opts.before else None
        env = Env(broker, client, fsd, root, opts.messages, before)
        doc["machine"]["busy_before_pct"] = machine_busy()
        run_all(env, opts, doc)
        doc["machine"]["busy_after_pct"] = machine_busy()
        if before is not None:
            before.stop()
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
        if before is not None and before.proc is not None and before.proc.poll() is None:
            before.stop()
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
