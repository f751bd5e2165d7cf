"""Where one replica's CPU goes per message, beside the raw loop's, in the same run.

In-process on a real broker (an embedded standalone, or ``--pulsar-url``): for
each run, pre-fill N messages of 100 B and drain them twice, alternating:

1. the raw pass-through loop (perf/tp_raw.py's shape: receive one, take up to
   1,000 queued, ``send_async`` each, ``flush``, acknowledge each), its main
   thread's CPU summed per step;
2. a real fsworker replica (``fsworker.cli.run`` with the WorkerSpec fsd would
   give it: default options, a state store, the attempt ledger) running the
   bytes echo fixture, its main thread's CPU summed per phase by wrapping the
   processing loop's methods for the run.

Both count from 10 % of N to N. "client threads" is the process's CPU minus
the main thread's: the pulsar-client's I/O threads (and the epoch ticker). It
reads private methods of fsworker/loop.py, publish.py and commit.py: when they
are renamed, it fails naming the one it missed. Prints figures; asserts nothing.

    python perf/replica_phases.py [--messages N] [--runs R] [--pulsar-url URL] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pulsar  # noqa: E402
import wasmtime  # noqa: E402

from fscommon import logs  # noqa: E402
from fscommon.function_options import FunctionOptions  # noqa: E402
from fscommon.worker_spec import WorkerSpec  # noqa: E402
from fsd.broker import EmbeddedPulsar  # noqa: E402
from fsworker import cli as worker_cli  # noqa: E402
from fsworker.commit import Committer  # noqa: E402
from fsworker.fsd_link import FsdLink  # noqa: E402
from fsworker.guest_calls import GuestCalls  # noqa: E402
from fsworker.loop import ProcessingLoop  # noqa: E402
from fsworker.publish import Publisher  # noqa: E402
from perf.harness import progress  # noqa: E402
from perf.tp_drain import echo_payload, prefill  # noqa: E402
from tests.helpers import free_port, unique  # noqa: E402
from tests.streams import client as pulsar_client  # noqa: E402
from tests.wasm_fixtures import BATCH_ECHO  # noqa: E402

# The replica's phases: (class, method) wrapped, inclusive main-thread CPU of each.
WRAPPED = (
    (ProcessingLoop, "_take_batch"),
    (ProcessingLoop, "_handle"),
    (ProcessingLoop, "_run"),
    (GuestCalls, "call"),
    (Publisher, "publish_batch"),
    (Committer, "commit"),
)
RAW_STEPS = ("receive", "send", "flush", "acknowledge")
START_AT = 0.1  # count from 10 % of N: the first batches pay for connections and JIT


def thread_cpu(tid: int) -> float:
    """CPU seconds of one thread of this process (user + system)."""
    with open(f"/proc/self/task/{tid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Window:
    """Main-thread and process CPU and the time between the START_AT mark and the end."""

    def __init__(self, n: int) -> None:
        self.n, self.counted = n, 0
        self._start: tuple[float, float, float, dict[str, float]] | None = None
        self.result: dict[str, float] = {}

    def mark(self, done: int, phases: dict[str, float]) -> None:
        """Called with how many messages are done; opens and closes the window."""
        if self._start is None and done >= self.n * START_AT:
            now = (time.monotonic(), thread_cpu(os.getpid()), time.process_time())
            self._start = (*now, dict(phases))
            self.counted = done
        elif self._start is not None and done >= self.n and not self.result:
            t0, m0, p0, ph0 = self._start
            count = done - self.counted
            per = 1e6 / count
            self.result = {k: (v - ph0.get(k, 0.0)) * per for k, v in phases.items()}
            self.result["main thread"] = (thread_cpu(os.getpid()) - m0) * per
            self.result["process"] = (time.process_time() - p0) * per
            self.result["msg/s"] = count / (time.monotonic() - t0)


def raw_drain(url: str, topic: str, n: int) -> dict[str, float]:
    """The raw pass-through loop on ``topic``, timed per step (main-thread CPU)."""
    client = pulsar_client(url)
    consumer = client.subscribe(
        topic,
        "raw",
        consumer_type=pulsar.ConsumerType.Shared,
        initial_position=pulsar.InitialPosition.Earliest,
        receiver_queue_size=1000,
    )
    producer = client.create_producer(
        topic + "-raw-out",
        batching_enabled=True,
        batching_max_publish_delay_ms=1,
        batching_max_messages=1000,
        block_if_queue_full=True,
        max_pending_messages=10000,
    )
    receive, send, ack = consumer.receive, producer.send_async, consumer.acknowledge
    steps: Counter[str] = Counter()
    window = Window(n)
    done = 0
    clock = time.thread_time
    try:
        while done < n:
            t0 = clock()
            batch = [receive(10_000)]
            while len(batch) < 1000:
                try:
                    batch.append(receive(0))
                except pulsar.Timeout:
                    break
            t1 = clock()
            for msg in batch:
                send(msg.data(), None)
            t2 = clock()
            producer.flush()
            t3 = clock()
            for msg in batch:
                ack(msg)
            t4 = clock()
            for step, spent in zip(RAW_STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                steps[step] += spent
            done += len(batch)
            window.mark(done, steps)
    finally:
        client.close()
    return window.result


@contextlib.contextmanager
def phase_clocks(sums: Counter[str]) -> Iterator[None]:
    """Sum the main thread's CPU in each WRAPPED method while the block runs."""
    main = threading.get_ident()
    saved = []
    for cls, name in WRAPPED:
        original = getattr(cls, name, None)
        if original is None:
            raise SystemExit(f"{cls.__name__}.{name} is gone: update WRAPPED in {__file__}")
        saved.append((cls, name, original))

        def timed(*args: Any, _f: Callable[..., Any] = original, _k: str = name, **kw: Any) -> Any:
            if threading.get_ident() != main:
                return _f(*args, **kw)
            t = time.thread_time()
            try:
                return _f(*args, **kw)
            finally:
                sums[_k] += time.thread_time() - t

        setattr(cls, name, timed)
    try:
        yield
    finally:
        for cls, name, original in saved:
            setattr(cls, name, original)


def worker_drain(url: str, topic: str, n: int, workdir: Path, wasm: Path) -> dict[str, float]:
    """A real replica (echo fixture) on ``topic`` until N are done; its phases per message."""
    spec = WorkerSpec(
        function="phases",
        replica=0,
        wasm_path=str(wasm),
        wasm_sha256=hashlib.sha256(wasm.read_bytes()).hexdigest(),
        kind="abi",
        inputs=[topic],
        output=topic + "-fs-out",
        subscription="fs-phases",
        pulsar_url=url,
        events_endpoint=f"ipc://{workdir}/events.sock",  # nobody reads: events are dropped
        cache_dir=str(workdir / "compiled"),
        log_level="warning",
        options=FunctionOptions.from_dict({}).to_dict(),
        state_path=str(workdir / f"{topic.rsplit('/', 1)[-1]}.state.sqlite3"),
        attempts_path=str(workdir / "attempts.sqlite3"),
    )
    # Every key exists before the watcher thread copies the dict: it never changes size.
    sums: Counter[str] = Counter({name: 0.0 for _, name in WRAPPED})
    window = Window(n)
    seen: dict[str, ProcessingLoop] = {}
    original_init = ProcessingLoop.__init__

    def init(self: ProcessingLoop, *args: Any, **kw: Any) -> None:
        original_init(self, *args, **kw)
        seen["loop"] = self

    def watch() -> None:
        while "loop" not in seen:
            time.sleep(0.01)
        loop = seen["loop"]
        while not window.result:
            window.mark(loop.counters.processed, dict(sums))
            time.sleep(0.002)
        loop.stop()

    ProcessingLoop.__init__ = init  # type: ignore[method-assign]
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    link = FsdLink(spec.events_endpoint, spec.function, spec.replica)
    try:
        with phase_clocks(sums):
            code = worker_cli.run(spec, link)
    finally:
        ProcessingLoop.__init__ = original_init  # type: ignore[method-assign]
        link.close()
    if code != 0 or not window.result:
        raise SystemExit(f"the replica ended with exit code {int(code)} before draining {n}")
    r = window.result
    # Inclusive sums -> one line per phase that does not overlap the others.
    return {
        "take batch (and earlier acks)": r["_take_batch"],
        "ids + attempt ledger": r["_handle"] - r["_run"],
        "guest call + framing": r["call"],
        "publish": r["publish_batch"],
        "commit (and earlier acks)": r["commit"],
        "rest of the batch": r["_run"] - r["call"] - r["publish_batch"] - r["commit"],
        "main thread": r["main thread"],
        "process": r["process"],
        "msg/s": r["msg/s"],
    }


def report(raw: list[dict[str, float]], fs: list[dict[str, float]], n: int) -> dict[str, Any]:
    """Medians over the runs, per path and step."""

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        out["client threads"] = out["process"] - out["main thread"]
        return out

    return {"messages": n, "runs": len(raw), "raw": medians(raw), "replica": medians(fs)}


def print_report(doc: dict[str, Any]) -> None:
    print(f"Main-thread CPU per message (us), medians of {doc['runs']} runs of {doc['messages']:,}")
    for path in ("raw", "replica"):
        label = "raw pass-through loop" if path == "raw" else "fsworker replica, echo"
        figures = doc[path]
        print(f"  {label}: {figures['msg/s']:,.0f} msg/s")
        for key, value in figures.items():
            if key != "msg/s":
                print(f"    {key:32s} {value:6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pulsar-url", help="a running broker (default: start an embedded one)")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    logs.configure("warning")
    with tempfile.TemporaryDirectory(prefix="fs-phases-") as tmp:
        workdir = Path(tmp)
        wasm = workdir / "echo.wasm"
        wasm.write_bytes(wasmtime.wat2wasm(BATCH_ECHO))
        broker = None
        url = opts.pulsar_url
        if url is None:
            progress("starting an embedded broker ...")
            broker = EmbeddedPulsar(
                data_dir=workdir / "pulsar", broker_port=free_port(), web_port=free_port()
            )
            broker.start()
            broker.wait_ready(300)
            url = broker.url
        try:
            feeder = pulsar_client(url)
            raw: list[dict[str, float]] = []
            fs: list[dict[str, float]] = []
            for run in range(opts.runs):
                for path, results in (("raw", raw), ("replica", fs)):
                    topic = f"persistent://public/default/{unique('phases')}"
                    prefill(feeder, topic, opts.messages, echo_payload)
                    progress(f"run {run + 1}/{opts.runs}: {path} ...")
                    if path == "raw":
                        results.append(raw_drain(url, topic, opts.messages))
                    else:
                        results.append(worker_drain(url, topic, opts.messages, workdir, wasm))
            feeder.close()
        finally:
            if broker is not None:
                broker.stop()
    doc = report(raw, fs, opts.messages)
    if opts.json:
        print(json.dumps(doc, indent=2))
    else:
        print_report(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
