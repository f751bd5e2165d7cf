"""The autoscaling controller (fsd/autoscaler.py) with a fake backlog source, writer and clock."""

from __future__ import annotations

from typing import Any

from fsd.autoscaler import Autoscaler
from fsd.function_spec import FunctionSpec


class Backlog:
    def __init__(self) -> None:
        self.value, self.when = 0, 0.0

    def sample(self, function: str) -> tuple[int | None, float] | None:
        return self.value, self.when

    def partitions(self, topic: str) -> int | None:
        return 0


class Writer:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.writes: list[int] = []

    def autoscale(self, name: str, replicas: int, reason: str) -> FunctionSpec | None:
        self.writes.append(replicas)
        self.spec.replicas = replicas
        return self.spec


def spec() -> FunctionSpec:
    return FunctionSpec(
        name="f", package="p", kind="abi", inputs=["in"], output="out",
        autoscale={"min_replicas": 1, "max_replicas": 4, "target_lag": 5.0,
                   "scale_down_delay": 60.0},
    )  # fmt: skip


def rig() -> tuple[Autoscaler, Backlog, Writer, list[dict[str, Any]], dict[str, int]]:
    s = spec()
    backlog, writer, published = Backlog(), Writer(s), []
    processed = {"n": 0}

    def views(name: str) -> list[dict[str, Any]]:
        return [
            {"replica": i, "state": "RUNNING", "pid": 100 + i, "processed": processed["n"]}
            for i in range(s.replicas)
        ]

    scaler = Autoscaler(writer, views, backlog, lambda name, event: published.append(event))
    return scaler, backlog, writer, published, processed


def step(scaler: Autoscaler, backlog: Backlog, writer: Writer, value: int, when: float) -> None:
    backlog.value, backlog.when = value, when
    scaler.tick([writer.spec], deciding=True)


def test_a_backlog_scales_up_once_and_the_lag_gauge_survives_waiting_for_replicas():
    scaler, backlog, writer, published, processed = rig()
    for t in range(0, 4):
        step(scaler, backlog, writer, 0, float(t))
    processed["n"] = 500
    step(scaler, backlog, writer, 50_000, 5.0)
    assert writer.writes == [4]
    assert [e["action"] for e in published] == ["up"]
    assert published[0]["old"] == 1 and published[0]["new"] == 4
    lag = scaler.gauges()["f"]
    assert lag > 5.0
    # The next decision waits for the new replicas (it measures nothing): the gauge stays.
    step(scaler, backlog, writer, 49_000, 6.0)
    assert scaler.gauges()["f"] == lag
    assert scaler.status("f")["action"] == "steady"


def test_the_same_sample_is_decided_once_and_a_member_that_does_not_lead_forgets():
    scaler, backlog, writer, _published, _processed = rig()
    step(scaler, backlog, writer, 0, 1.0)
    first = scaler.last["f"]
    scaler.tick([writer.spec], deciding=True)  # no new sample
    assert scaler.last["f"] is first
    scaler.tick([writer.spec], deciding=False)
    assert scaler.status("f") is None and scaler.gauges() == {}


def test_a_hold_is_announced_when_it_starts_not_every_interval():
    scaler, backlog, writer, published, _processed = rig()
    # A backlog and nothing processed: hold, said once.
    for t in range(0, 10):
        step(scaler, backlog, writer, 1000, float(t))
    holds = [e for e in published if e["action"] == "hold"]
    assert len(holds) == 1 and "nothing processed" in holds[0]["reason"]
    assert writer.writes == []
