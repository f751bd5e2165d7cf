"""The autoscaling decision (fsd/autoscale.py) on recorded series, with a fake clock."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from fsd.autoscale import (
    Action,
    AutoscaleBounds,
    AutoscaleInvalid,
    Decider,
    Decision,
    Observation,
)
from fsd.function_spec import MAX_REPLICAS, SpecInvalid, validate_create_args

INTERVAL = 5.0


class Function:
    """A simulated function: replicas of a fixed capacity draining a backlog, fed at a rate.

    Each step advances the fake clock by INTERVAL, applies the last decision
    (new replicas are ready at the next observation), and returns the Decider's
    answer to what an observation would show.
    """

    def __init__(
        self, bounds: AutoscaleBounds, capacity: float, replicas: int = 1, **obs: object
    ) -> None:
        self.decider = Decider(bounds)
        self.capacity = capacity
        self.replicas = replicas
        self.backlog = 0.0
        self.now = 0.0
        self.processed: dict[str, int] = {}
        self.extra = obs
        self.decisions: list[Decision] = []

    def step(self, arrival: float, backlog_known: bool = True) -> Decision:
        self.now += INTERVAL
        work = self.backlog + arrival * INTERVAL
        done = min(work, self.capacity * self.replicas * INTERVAL)
        self.backlog = work - done
        for index in range(self.replicas):
            key = f"/{index}/pid"
            self.processed[key] = self.processed.get(key, 0) + int(done / self.replicas)
        for key in list(self.processed):
            if int(key.split("/")[1]) >= self.replicas:
                del self.processed[key]
        decision = self.decider.observe(
            Observation(
                now=self.now,
                backlog=round(self.backlog) if backlog_known else None,
                processed=dict(self.processed),
                received=dict(self.processed),
                current=self.replicas,
                ready=self.replicas,
                **self.extra,  # type: ignore[arg-type]
            )
        )
        self.decisions.append(decision)
        self.replicas = decision.replicas
        return decision

    def run(self, arrivals: Iterator[float] | list[float]) -> list[int]:
        return [self.step(a).replicas for a in arrivals]


def moves(fn: Function) -> list[Decision]:
    return [d for d in fn.decisions if d.action in (Action.UP, Action.DOWN)]


BOUNDS = AutoscaleBounds(1, 4, target_lag=10.0, scale_down_delay=60.0)


def test_a_burst_scales_up_at_once_then_down_one_step_per_delay_to_min():
    fn = Function(BOUNDS, capacity=1000)
    fn.run([0, 0])  # idle: measured, nothing to do
    fn.backlog = 200_000  # the burst lands
    counts = fn.run([0] * 60)
    assert max(counts) == 4, "the burst needs more than max: straight to max"
    ups = [d for d in moves(fn) if d.action is Action.UP]
    assert len(ups) == 1 and ups[0].replicas == 4
    assert "backlog" in ups[0].reason and "msg/s per replica" in ups[0].reason
    assert "1 -> 4" in ups[0].reason
    downs = [d for d in moves(fn) if d.action is Action.DOWN]
    assert [d.replicas for d in downs] == [3, 2, 1], "down one step at a time, never below min"
    assert counts[-1] == 1
    # No step down comes before the scale-down delay of low lag.
    times = [i * INTERVAL for i, d in enumerate(fn.decisions) if d.action is Action.DOWN]
    assert all(b - a >= BOUNDS.scale_down_delay for a, b in itertools.pairwise(times))


def test_scale_up_sizes_for_the_backlog_and_the_arrival_rate():
    fn = Function(AutoscaleBounds(1, 10, target_lag=10.0), capacity=1000)
    fn.run([0, 0])
    fn.backlog = 20_000
    decision = fn.step(1500)
    # (arrival 1500 + backlog 20000 / 10 s) / 1000 per replica -> about 4.
    assert decision.action is Action.UP and 3 <= decision.replicas <= 5


def test_a_steady_load_never_flaps():
    # 2.5 replicas' worth of load: 3 replicas keep up, 2 would not.
    fn = Function(BOUNDS, capacity=1000, replicas=1)
    counts = fn.run([2500.0] * 200)
    settled = counts[20:]
    assert len(set(settled)) == 1, f"replicas changed under a steady load: {settled}"
    assert settled[0] >= 3


def test_a_light_steady_stream_makes_no_changes():
    fn = Function(BOUNDS, capacity=1000, replicas=1)
    fn.run([50.0] * 100)
    assert moves(fn) == []


def test_idle_at_min_is_steady_and_bounds_are_respected():
    fn = Function(AutoscaleBounds(2, 3, scale_down_delay=5.0), capacity=100, replicas=2)
    fn.run([0.0] * 20)
    assert moves(fn) == [] and fn.replicas == 2
    fn.backlog = 1_000_000
    fn.run([0.0] * 5)
    assert fn.replicas == 3
    holds = [d for d in fn.decisions if d.action is Action.HOLD]
    assert holds and "at --max-replicas 3" in holds[-1].reason


def test_down_only_when_one_fewer_replica_keeps_up_with_headroom():
    fn = Function(AutoscaleBounds(1, 4, scale_down_delay=10.0), capacity=1000, replicas=1)
    fn.backlog = 100_000
    fn.run([1800.0] * 10)  # learn the capacity while busy
    assert fn.replicas >= 3
    before = fn.replicas
    fn.run([1800.0] * 40)
    # 1800 msg/s needs 2 replicas at 1000 with 25 % to spare -> 3; it never goes to 2.
    assert fn.replicas >= 3
    assert all(d.replicas >= 3 for d in fn.decisions[10:]), before


def test_nothing_processed_with_a_backlog_holds_and_says_why():
    fn = Function(BOUNDS, capacity=0, replicas=1)
    fn.backlog = 5000
    fn.run([0.0] * 4)
    assert fn.replicas == 1
    hold = fn.decisions[-1]
    assert hold.action is Action.HOLD and "nothing processed" in hold.reason


def test_unknown_backlog_holds():
    fn = Function(BOUNDS, capacity=1000, replicas=2)
    decision = fn.step(0, backlog_known=False)
    assert decision.action is Action.HOLD and "backlog is not known" in decision.reason
    assert decision.replicas == 2


def test_failover_is_capped_at_the_partition_count():
    fn = Function(BOUNDS, capacity=1000, receivers=1, cap_reason="one partition")
    fn.backlog = 100_000
    fn.run([0.0] * 5)
    assert fn.replicas == 1
    assert fn.decisions[-1].action is Action.HOLD and "one partition" in fn.decisions[-1].reason
    capped = Function(BOUNDS, capacity=1000, receivers=2, cap_reason="two partitions")
    capped.backlog = 100_000
    capped.run([0.0] * 5)
    assert capped.replicas == 2


def test_key_shared_with_an_idle_replica_holds():
    decider = Decider(BOUNDS, min_span=1.0)
    base = {"current": 2, "ready": 2, "key_shared": True}
    decider.observe(
        Observation(
            now=0.0, backlog=50_000, processed={"a": 0, "b": 0}, received={"a": 0, "b": 0}, **base
        )
    )
    decision = decider.observe(
        Observation(
            now=5.0,
            backlog=45_000,
            processed={"a": 1000, "b": 0},
            received={"a": 1000, "b": 0},
            **base,
        )
    )
    assert decision.action is Action.HOLD and decision.replicas == 2
    assert "fewer active keys than replicas" in decision.reason


def test_a_restarted_replica_counter_is_a_new_start_not_a_negative_rate():
    decider = Decider(BOUNDS, min_span=1.0)
    decider.observe(Observation(now=0.0, backlog=100, processed={"0/1": 5000}, current=1, ready=1))
    decision = decider.observe(
        Observation(now=5.0, backlog=100, processed={"0/2": 500}, current=1, ready=1)
    )
    assert decision.rate == pytest.approx(100.0)


def test_bounds_changed_under_the_function_move_it_inside_at_once():
    decider = Decider(AutoscaleBounds(3, 5))
    decision = decider.observe(Observation(now=0.0, backlog=0, current=1, ready=1))
    assert decision.action is Action.UP and decision.replicas == 3


def test_waiting_for_new_replicas_is_steady_not_a_decision():
    decider = Decider(BOUNDS)
    decision = decider.observe(Observation(now=0.0, backlog=10, current=3, ready=1))
    assert decision.action is Action.STEADY and "ready (1/3)" in decision.reason


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"min_replicas": 0, "max_replicas": 2}, "--min-replicas must be an integer from 1"),
        ({"min_replicas": 3, "max_replicas": 2}, "is above --max-replicas"),
        ({"min_replicas": 1, "max_replicas": MAX_REPLICAS + 1}, "--max-replicas must be"),
        ({"min_replicas": 1, "max_replicas": 2, "target_lag": 0.1}, "--target-lag must be"),
        ({"min_replicas": 1, "max_replicas": 2, "scale_down_delay": -1}, "--scale-down-delay"),
        ({"min_replicas": 1}, "--max-replicas must be"),
        ({"min_replicas": 1, "max_replicas": 2, "speed": 1}, "unknown field(s) speed"),
        ("fast", "must be a map"),
    ],
)
def test_bad_bounds_name_the_flag(raw: object, message: str):
    with pytest.raises(AutoscaleInvalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        AutoscaleBounds.from_dict(raw, MAX_REPLICAS)


def test_create_with_bounds_starts_at_min_or_the_given_count_inside_them():
    base = {"name": "f", "inputs": ["in"], "autoscale": {"min_replicas": 2, "max_replicas": 4}}
    out = validate_create_args(base)
    assert out["replicas"] == 2
    assert out["autoscale"] == {
        "min_replicas": 2,
        "max_replicas": 4,
        "target_lag": 10.0,
        "scale_down_delay": 60.0,
    }
    assert validate_create_args({**base, "replicas": 3})["replicas"] == 3
    assert validate_create_args({**base, "replicas": 9})["replicas"] == 4
    with pytest.raises(SpecInvalid, match="--max-replicas"):
        validate_create_args({**base, "autoscale": {"min_replicas": 2}})
