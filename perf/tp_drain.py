"""What every data-path drain shares: payloads, the admin calls, CPU accounting, Drain.

Split out of perf/bench_throughput.py. A drain pre-fills an input topic, starts
the path under test and polls the output topic's message count until it holds
N; rates are taken between 10 % and 90 % of N, CPU over the same window.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import psutil
import pulsar

from perf.harness import BenchError, progress

POLL_S = 0.05  # output-count polling interval
STALL_S = 60.0  # no progress for this long: something is broken


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

    def entries(self, topic: str) -> int | None:
        """How many entries (ledger writes) the broker added to ``topic``; None if unknown.

        A producer batch is one entry, so messages / entries is the batch size the
        broker actually received."""
        try:
            url = self._topic_url(topic) + "/internalStats"
            with urllib.request.urlopen(url, timeout=10) as resp:
                return int(json.loads(resp.read())["entriesAddedCounter"])
        except (OSError, ValueError, KeyError):
            return None

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
        entries = self.admin.entries(self.topic)
        if entries:
            out["output messages per entry"] = n / entries
        (_, ca, ma), (_, cb, mb) = self.marks["lo"], self.marks["hi"]
        done = cb - ca
        if ma.pids != mb.pids:  # a replica restarted in between: its CPU is not comparable
            ma.procs = mb.procs = None
        if done > 0:
            if ma.procs is not None and mb.procs is not None:
                out["CPU us/msg: measured processes"] = (mb.procs - ma.procs) / done * 1e6
            if ma.broker is not None and mb.broker is not None:
                out["CPU us/msg: broker"] = (mb.broker - ma.broker) / done * 1e6
            if "CPU us/msg: measured processes" in out and "CPU us/msg: broker" in out:
                # What one message costs the machine: the path's processes and the broker.
                out["CPU us/msg: total"] = (
                    out["CPU us/msg: measured processes"] + out["CPU us/msg: broker"]
                )
            if mb.total > ma.total:
                busy = (mb.total - ma.total) - (mb.idle - ma.idle)
                out["machine CPU busy (%)"] = 100 * busy / (mb.total - ma.total)
                if None not in (ma.procs, mb.procs, ma.broker, mb.broker):
                    # Everything else: this script, fsd, and whatever else runs on the machine
                    # (in USER_HZ ticks, hence an approximation).
                    own = (mb.procs - ma.procs) + (mb.broker - ma.broker)  # type: ignore[operator]
                    out["CPU us/msg: everything else"] = max(0.0, busy - own) / done * 1e6
        return out
