"""fsd's Prometheus endpoint: per function and replica counters, state, resources, latency.

Threads: fsd's main loop owns every Replica. Once a second it builds an
immutable ``Snapshot`` and swaps it in with one reference assignment (atomic
in CPython); prometheus_client's HTTP server thread only ever reads the
current snapshot. No lock is shared with the zmq loop and a slow scrape never
holds it up.

Counters are added up per replica across worker restarts (``ReplicaTotals``):
a replica's series only go back to zero when fsd itself restarts, as any
Prometheus counter does when its process restarts. What a worker counted
after its last heartbeat before a crash (at most one heartbeat interval) is
lost. Names, labels and buckets are listed in docs/observability.md.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
import structlog
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from fscommon.latency import LATENCY_BUCKETS, cumulative
from fscommon.protocol import HEARTBEAT_COUNTERS, Heartbeat
from fsd.replica_state import ReplicaState

if TYPE_CHECKING:
    from fsd.function_spec import FunctionSpec
    from fsd.replica import Replica
    from fsd.supervisor import Supervisor

log = structlog.get_logger("fsd.metrics")

REFRESH_INTERVAL = 1.0  # seconds between snapshots (and resource samples)
DISABLED = ("", "off", "none", "false", "0")

# counter key in the heartbeat -> (metric name without _total, help)
COUNTER_METRICS = {
    "received": ("fs_messages_received", "Messages the worker took from its input topics."),
    "processed": (
        "fs_messages_processed",
        "Messages processed successfully and acknowledged (outputs confirmed first).",
    ),
    "failed": ("fs_messages_failed", "Failed processing attempts (each retry counts)."),
    "retried": ("fs_messages_retried", "Failed attempts handed back to the broker for retry."),
    "dead_lettered": ("fs_messages_dead_lettered", "Messages sent to the dead-letter topic."),
    "published": ("fs_records_published", "Output records confirmed by the broker."),
}
assert set(COUNTER_METRICS) == set(HEARTBEAT_COUNTERS)


def parse_endpoint(value: str | None) -> tuple[str, int] | None:
    """``host:port`` (``[::1]:9464``, ``:9464`` for every address) or None when disabled.

    Raises ValueError with a one-line reason.
    """
    if value is None or value.strip().lower() in DISABLED:
        return None
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"expected host:port (e.g. 127.0.0.1:9464) or 'off', got {value!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, got {port}")
    host = host.strip("[]") or "0.0.0.0"
    return host, port


class ReplicaTotals:
    """One replica's counters added up over its worker incarnations (main loop only)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._current: Heartbeat | None = None
        self._counters = dict.fromkeys(HEARTBEAT_COUNTERS, 0)
        self._latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._fuel: int | None = None

    def on_heartbeat(self, pid: int, heartbeat: Heartbeat) -> None:
        """The latest cumulative numbers of the worker with ``pid``."""
        if pid != self._pid:
            self._fold()
            self._pid = pid
        self._current = heartbeat

    def _fold(self) -> None:
        """Add the finished incarnation's last numbers to the base."""
        hb = self._current
        if hb is None:
            return
        for key, value in hb.counters.items():
            self._counters[key] += value
        self._latency = [a + b for a, b in zip(self._latency, hb.latency, strict=True)]
        self._latency_sum += hb.latency_sum
        if hb.fuel_used is not None:
            self._fuel = (self._fuel or 0) + hb.fuel_used
        self._current = None

    def totals(self) -> tuple[dict[str, int], list[int], float, int | None]:
        """(counters, per-bucket latency counts, latency sum, fuel or None) since fsd started."""
        hb = self._current
        if hb is None:
            return dict(self._counters), list(self._latency), self._latency_sum, self._fuel
        counters = {k: v + hb.counters[k] for k, v in self._counters.items()}
        latency = [a + b for a, b in zip(self._latency, hb.latency, strict=True)]
        fuel = self._fuel
        if hb.fuel_used is not None:
            fuel = (fuel or 0) + hb.fuel_used
        return counters, latency, self._latency_sum + hb.latency_sum, fuel


@dataclass(frozen=True)
class ReplicaSample:
    """What the endpoint shows for one replica at one moment."""

    function: str
    replica: int
    state: str
    restarts: int
    counters: dict[str, int]
    latency: list[int]  # per bucket, not cumulative
    latency_sum: float
    fuel: int | None
    rss_bytes: int | None
    cpu_percent: float | None


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape reads; never changed after it is built."""

    replicas: tuple[ReplicaSample, ...] = ()
    backlog: tuple[tuple[str, int], ...] = ()
    desired: tuple[tuple[str, int], ...] = ()  # function, desired replicas
    lag: tuple[tuple[str, float], ...] = ()  # function, seconds (autoscaled functions)


class _CpuMeter:
    """CPU% of each worker between two snapshots, from cpu_times (psutil).

    Its own bookkeeping, so it does not disturb the cpu_percent(None) that
    ``fsctl status`` reads on the same psutil.Process.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, int], tuple[int, float, float]] = {}

    def sample(self, replica: Replica, now: float) -> tuple[int | None, float | None]:
        key = (replica.function, replica.index)
        ps, pid = replica.ps, replica.pid
        if ps is None or pid is None:
            self._last.pop(key, None)
            return None, None
        try:
            with ps.oneshot():
                rss = ps.memory_info().rss
                times = ps.cpu_times()
        except psutil.Error:
            return None, None
        used = times.user + times.system
        last = self._last.get(key)
        self._last[key] = (pid, used, now)
        if last is None or last[0] != pid or now <= last[2]:
            return rss, None
        return rss, 100.0 * (used - last[1]) / (now - last[2])

    def forget_except(self, keys: set[tuple[str, int]]) -> None:
        for key in set(self._last) - keys:
            del self._last[key]


def build_snapshot(
    supervisor: Supervisor,
    backlog: Any,
    cpu: _CpuMeter,
    now: float,
    specs: Sequence[FunctionSpec] = (),
    autoscaler: Any = None,
) -> Snapshot:
    """Read every replica (main loop only)."""
    samples = []
    for name, runtime in supervisor.functions.items():
        for replica in runtime.replicas.values():
            counters, latency, latency_sum, fuel = replica.totals.totals()
            rss, cpu_percent = cpu.sample(replica, now)
            samples.append(
                ReplicaSample(
                    function=name,
                    replica=replica.index,
                    state=str(replica.state),
                    restarts=replica.restarts,
                    counters=counters,
                    latency=latency,
                    latency_sum=latency_sum,
                    fuel=fuel,
                    rss_bytes=rss,
                    cpu_percent=cpu_percent,
                )
            )
    cpu.forget_except({(s.function, s.replica) for s in samples})
    backlogs = []
    names = [s.name for s in specs] if specs else list(supervisor.functions)
    if backlog is not None:
        for name in names:
            value = backlog.get(name)
            if isinstance(value, int):
                backlogs.append((name, value))
    lags = autoscaler.gauges() if autoscaler is not None else {}
    return Snapshot(
        tuple(samples),
        tuple(backlogs),
        tuple((s.name, s.replicas) for s in specs),
        tuple((name, lag) for name, lag in sorted(lags.items()) if lag is not None),
    )


class FsCollector:
    """A prometheus_client collector over the current snapshot (HTTP thread)."""

    def __init__(self, source: MetricsServer) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        # Nothing up front: the series exist only once functions do.
        return []

    def collect(self) -> Iterator[Metric]:
        out = families(self._source.snapshot)
        member = self._source.member
        if member is not None:
            # Cluster mode: which member these series come from (join on it in queries).
            info = GaugeMetricFamily(
                "fs_cluster_member_info",
                "1: this fsd is the named member of the named cluster.",
                labels=["cluster", "member"],
            )
            info.add_metric(list(member), 1)
            out.append(info)
        return iter(out)


def families(snap: Snapshot) -> list[Metric]:
    """The metric families for one snapshot."""
    labels = ["function", "replica"]
    out: list[Metric] = []
    for key, (name, help_text) in COUNTER_METRICS.items():
        family = CounterMetricFamily(name, help_text, labels=labels)
        for s in snap.replicas:
            family.add_metric([s.function, str(s.replica)], s.counters[key])
        out.append(family)
    restarts = CounterMetricFamily(
        "fs_replica_restarts", "Automatic restarts of the replica's worker by fsd.", labels=labels
    )
    state = GaugeMetricFamily(
        "fs_replica_state",
        "1 for the replica's current state, 0 for the others.",
        labels=[*labels, "state"],
    )
    rss = GaugeMetricFamily("fs_replica_rss_bytes", "Worker resident memory.", labels=labels)
    cpu = GaugeMetricFamily(
        "fs_replica_cpu_percent",
        "Worker CPU use since the previous sample (100 = one core).",
        labels=labels,
    )
    latency = HistogramMetricFamily(
        "fs_processing_latency_seconds",
        "Per message: from the worker taking its batch to acknowledging it.",
        labels=labels,
    )
    fuel = CounterMetricFamily(
        "fs_fuel_consumed", "Fuel the guest used (functions with --fuel only).", labels=labels
    )
    bounds = [repr(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    for s in snap.replicas:
        values = [s.function, str(s.replica)]
        restarts.add_metric(values, s.restarts)
        for st in ReplicaState:
            state.add_metric([*values, str(st)], 1.0 if s.state == str(st) else 0.0)
        if s.rss_bytes is not None:
            rss.add_metric(values, s.rss_bytes)
        if s.cpu_percent is not None:
            cpu.add_metric(values, s.cpu_percent)
        latency.add_metric(
            values, list(zip(bounds, cumulative(s.latency), strict=True)), s.latency_sum
        )
        if s.fuel is not None:
            fuel.add_metric(values, s.fuel)
    backlog = _per_function(
        "fs_function_backlog",
        "Messages waiting in the function's subscription (broker admin API).",
        snap.backlog,
    )
    desired = _per_function(
        "fs_function_desired_replicas",
        "Replicas the function should have (set by fsctl, or by the autoscaler).",
        snap.desired,
    )
    lag = _per_function(
        "fs_function_lag_seconds",
        "Autoscaled functions: seconds the backlog would take at the current rate.",
        snap.lag,
    )
    out += [restarts, state, rss, cpu, latency, fuel, backlog, desired, lag]
    return out


def _per_function(
    name: str, help_text: str, values: Sequence[tuple[str, float]]
) -> GaugeMetricFamily:
    """A gauge with one sample per function."""
    family = GaugeMetricFamily(name, help_text, labels=["function"])
    for function, value in values:
        family.add_metric([function], value)
    return family


class MetricsServer:
    """The HTTP endpoint and the snapshot it serves."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.snapshot = Snapshot()
        self.member: tuple[str, str] | None = None  # (cluster, member id) in cluster mode
        self._cpu = _CpuMeter()
        self._next_refresh = 0.0
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> None:
        """Bind and serve from a daemon thread; raises OSError if the port is taken."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FsCollector(self))
        # fsd's own CPU, memory and open files, as fsd_process_*.
        ProcessCollector(namespace="fsd", registry=registry)
        self._server, self._thread = start_http_server(self.port, self.host, registry)
        self.port = self._server.server_address[1]
        log.info("metrics endpoint ready", url=f"http://{self.host}:{self.port}/metrics")

    def refresh(
        self,
        supervisor: Supervisor,
        backlog: Any,
        specs: Sequence[FunctionSpec] = (),
        autoscaler: Any = None,
        force: bool = False,
    ) -> None:
        """Build a new snapshot if the last one is older than REFRESH_INTERVAL (main loop)."""
        now = time.monotonic()
        if not force and now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_INTERVAL
        self.snapshot = build_snapshot(supervisor, backlog, self._cpu, now, specs, autoscaler)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.shutdown()
                self._server.server_close()
            self._server = None
