"""The latency histogram, the heartbeat codec, per-replica totals and the Prometheus output."""

from __future__ import annotations

import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fscommon.latency import LATENCY_BUCKETS, LatencyHistogram, cumulative
from fscommon.protocol import (
    HEARTBEAT_COUNTERS,
    EventKind,
    Heartbeat,
    ProtocolError,
    decode_event,
    decode_heartbeat,
    encode_event,
    heartbeat_fields,
)
from fsd.config import ConfigError, FsdConfig
from fsd.metrics import (
    FsCollector,
    MetricsServer,
    ReplicaSample,
    ReplicaTotals,
    Snapshot,
    _CpuMeter,
    build_snapshot,
    parse_endpoint,
)
from fsd.replica_state import ReplicaState
from tests.helpers import free_port

NBUCKETS = len(LATENCY_BUCKETS) + 1


def _hb(n: int, latency: list[int] | None = None, fuel: int | None = None) -> Heartbeat:
    counters = dict.fromkeys(HEARTBEAT_COUNTERS, n)
    return Heartbeat(counters, tuple(latency or [0] * NBUCKETS), n * 0.5, fuel)


def test_histogram_buckets_are_inclusive_and_weighted():
    h = LatencyHistogram()
    h.observe(0.0005, 3)  # on a bound: that bound's bucket (le)
    h.observe(0.00051)
    h.observe(99.0, 2)  # above every bound: +Inf
    assert h.counts[0] == 3 and h.counts[1] == 1 and h.counts[-1] == 2
    assert h.count == 6
    assert h.sum == pytest.approx(0.0015 + 0.00051 + 198.0)
    assert cumulative([1, 0, 2, 3]) == [1, 1, 3, 6]
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)


def test_heartbeat_roundtrip_through_the_event_codec():
    h = LatencyHistogram()
    h.observe(0.02, 5)
    counters = {k: i for i, k in enumerate(HEARTBEAT_COUNTERS)}
    fields = heartbeat_fields(counters, list(h.counts), h.sum, fuel_used=1234)
    event = decode_event(encode_event(EventKind.HEARTBEAT, "f", 0, 42, **fields))
    hb = decode_heartbeat(event)
    assert hb.counters == counters
    assert hb.latency == tuple(h.counts) and hb.latency_sum == pytest.approx(0.1)
    assert hb.fuel_used == 1234
    # An old worker's heartbeat (counters only) still decodes, with an empty histogram.
    old = decode_heartbeat({"processed": 3})
    assert old.counters["processed"] == 3 and sum(old.latency) == 0 and old.fuel_used is None


@pytest.mark.parametrize(
    ("field", "bad", "fragment"),
    [
        ("processed", -1, "'processed' must be a count"),
        ("failed", "3", "'failed' must be a count"),
        ("received", True, "'received' must be a count"),
        ("latency", [0] * 3, "'latency' must be 15 counts"),
        ("latency", [-1] * NBUCKETS, "'latency' must be 15 counts"),
        ("latency", "x", "'latency' must be"),
        ("latency_sum", -0.5, "'latency_sum' must be >= 0"),
        ("latency_sum", "1", "'latency_sum' must be >= 0"),
        ("fuel_used", 1.5, "'fuel_used' must be a count"),
    ],
)
def test_bad_heartbeats_are_rejected_naming_the_field(field, bad, fragment):
    with pytest.raises(ProtocolError) as err:
        decode_heartbeat({field: bad})
    assert fragment in err.value.message


def test_totals_add_up_incarnations_and_keep_the_last_beat_of_each():
    totals = ReplicaTotals()
    assert totals.totals()[0]["processed"] == 0
    one = [0] * NBUCKETS
    one[2] = 4
    totals.on_heartbeat(100, _hb(3, one))
    totals.on_heartbeat(100, _hb(5, one))  # cumulative: replaces, does not add
    counters, latency, latency_sum, fuel = totals.totals()
    assert counters["processed"] == 5 and latency[2] == 4 and latency_sum == 2.5
    assert fuel is None
    totals.on_heartbeat(200, _hb(2, one, fuel=10))  # a new worker (restart) starts at zero
    counters, latency, latency_sum, fuel = totals.totals()
    assert counters["processed"] == 7 and latency[2] == 8 and latency_sum == 3.5
    assert fuel == 10
    totals.on_heartbeat(300, _hb(1, fuel=5))
    assert totals.totals()[0]["dead_lettered"] == 8 and totals.totals()[3] == 15


def _replica(function: str, index: int, state: ReplicaState, totals: ReplicaTotals):
    return SimpleNamespace(
        function=function, index=index, state=state, restarts=2, totals=totals, ps=None, pid=None
    )


def _with(labels: tuple, **more: str) -> tuple:
    return tuple(sorted((*labels, *more.items())))


def _scrape_text(snapshot: Snapshot) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FsCollector(SimpleNamespace(snapshot=snapshot, member=None)))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_collector_output_names_labels_and_buckets():
    totals = ReplicaTotals()
    latency = [0] * NBUCKETS
    latency[0], latency[5], latency[-1] = 2, 3, 1
    totals.on_heartbeat(1, _hb(4, latency, fuel=99))
    supervisor = SimpleNamespace(
        functions={
            "wc": SimpleNamespace(replicas={0: _replica("wc", 0, ReplicaState.RUNNING, totals)})
        }
    )
    backlog = SimpleNamespace(get=lambda name: 17)
    snap = build_snapshot(supervisor, backlog, cpu=_CpuMeter(), now=1.0)
    samples = _scrape_text(snap)
    rep = (("function", "wc"), ("replica", "0"))
    for name in (
        "fs_messages_received_total",
        "fs_messages_processed_total",
        "fs_messages_failed_total",
        "fs_messages_retried_total",
        "fs_messages_dead_lettered_total",
        "fs_records_published_total",
    ):
        assert samples[(name, rep)] == 4, name
    assert samples[("fs_replica_restarts_total", rep)] == 2
    assert samples[("fs_fuel_consumed_total", rep)] == 99
    assert samples[("fs_replica_state", _with(rep, state="RUNNING"))] == 1
    assert samples[("fs_replica_state", _with(rep, state="FATAL"))] == 0
    assert samples[("fs_processing_latency_seconds_count", rep)] == 6
    assert samples[("fs_processing_latency_seconds_sum", rep)] == 2.0
    assert samples[("fs_processing_latency_seconds_bucket", _with(rep, le="0.0005"))] == 2
    assert samples[("fs_processing_latency_seconds_bucket", _with(rep, le="0.025"))] == 5
    assert samples[("fs_processing_latency_seconds_bucket", _with(rep, le="10.0"))] == 5
    assert samples[("fs_processing_latency_seconds_bucket", _with(rep, le="+Inf"))] == 6
    assert samples[("fs_function_backlog", (("function", "wc"),))] == 17
    # No process: no RSS or CPU series rather than a made-up zero.
    assert ("fs_replica_rss_bytes", rep) not in samples


def test_empty_snapshot_is_a_valid_exposition():
    assert _scrape_text(Snapshot()) == {}
    sample = ReplicaSample("f", 0, "STOPPED", 0, dict.fromkeys(HEARTBEAT_COUNTERS, 0),
                           [0] * NBUCKETS, 0.0, None, None, None)  # fmt: skip
    labels = (("function", "f"), ("replica", "0"), ("state", "STOPPED"))
    assert _scrape_text(Snapshot((sample,)))[("fs_replica_state", labels)] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("off", None),
        ("OFF", None),
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (":9464", ("0.0.0.0", 9464)),
        ("[::1]:9464", ("::1", 9464)),
    ],
)
def test_parse_endpoint(text, expected):
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["9464x", "localhost", "host:0", "host:70000", "host:-1"])
def test_bad_metrics_endpoint_is_a_config_error_naming_the_key(text, tmp_path):
    with pytest.raises(ConfigError, match="metrics_endpoint"):
        FsdConfig.from_values({"state_dir": str(tmp_path), "metrics_endpoint": text})


def test_server_serves_the_current_snapshot_from_its_thread():
    server = MetricsServer("127.0.0.1", free_port())
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
        assert (
            "fsd_process_cpu_seconds_total" in body and "fs_messages_processed_total{" not in body
        )
        totals = ReplicaTotals()
        totals.on_heartbeat(1, _hb(9))
        supervisor = SimpleNamespace(
            functions={
                "f": SimpleNamespace(replicas={0: _replica("f", 0, ReplicaState.RUNNING, totals)})
            }
        )
        server.refresh(supervisor, None, force=True)
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
        assert 'fs_messages_processed_total{function="f",replica="0"} 9.0' in body
    finally:
        server.stop()
