"""What the benchmarks in perf/ share: errors, progress lines, statistics, machine facts."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fsd.broker import PULSAR_VERSION


class BenchError(Exception):
    """Something did not work (as opposed to being slow)."""


def progress(text: str) -> None:
    """Progress lines go to stderr, so --json output stays clean."""
    print(text, file=sys.stderr, flush=True)


def summary(samples: list[float]) -> dict[str, Any]:
    """median/min/max of the samples (None when there are none)."""
    if not samples:
        return {"n": 0, "median": None, "min": None, "max": None, "samples": []}
    return {
        "n": len(samples),
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": [round(s, 6) for s in samples],
    }


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine_info() -> dict[str, Any]:
    """CPU, core count, versions and load: printed with every report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "pulsar": PULSAR_VERSION,
        "pulsar_client": _version("pulsar-client"),
        "wasmtime": _version("wasmtime"),
        "loadavg_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM handler: unwind like Ctrl-C, so the broker and fsd get stopped."""
    raise KeyboardInterrupt


def print_results(
    doc: dict[str, Any], as_json: bool, report: Callable[[dict[str, Any]], None]
) -> None:
    """The run's document as JSON, or ``report``'s text and the run's total time."""
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    report(doc)
    print(f"(total {doc['elapsed_s']:.0f} s, broker ready in {doc['broker_start_s']:.1f} s)")


def best_of(fn: Callable[[], object], repeat: int = 15) -> float:
    """Seconds of the fastest of ``repeat`` runs of ``fn`` (the least disturbed by a noisy
    machine)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
