"""The broker's own limit, measured with pulsar-perf (Java client, 100-byte messages).

Split out of perf/bench_throughput.py.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fsd.broker import find_java
from perf.harness import BenchError, progress
from perf.tp_drain import crossing
from perf.tp_paths import Env
from tests.helpers import unique

REPO = Path(__file__).resolve().parent.parent
PERF_PROVISION = REPO / "scripts" / "provision-pulsar-perf.sh"


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
