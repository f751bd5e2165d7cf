"""The autoscaling controller: observes autoscaled functions and writes what the Decider says.

It runs in fsd's main loop on the member that decides (a single host, or the
cluster's leader), once per ``autoscale_interval`` when the backlog poller
has a new sample. Its only write is ``FunctionService.autoscale``: the
registry keeps one writer per concept (the desired replica count), and the
supervisors (on every member) reconcile toward it, so a scale-down drains
replicas exactly as ``fsctl scale`` does.

Every decision that changes something, and every new reason to hold, is
logged, published on the transitions socket (``fsctl events``) and kept for
``fsctl status``; the desired replicas and the lag are Prometheus gauges.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog

from fscommon.function_options import Ordering
from fscommon.protocol import Desired
from fsd.autoscale import Action, Decider, Decision, Observation
from fsd.function_spec import FunctionSpec
from fsd.replica_state import ReplicaState

log = structlog.get_logger("fsd.autoscaler")

View = dict[str, Any]


class BacklogSource(Protocol):
    """What the controller reads of fsd/backlog.py BacklogPoller."""

    def sample(self, function: str) -> tuple[int | None, float] | None: ...

    def partitions(self, topic: str) -> int | None: ...


class ScaleWriter(Protocol):
    """What the controller calls on fsd/functions.py FunctionService."""

    def autoscale(self, name: str, replicas: int, reason: str) -> FunctionSpec | None: ...


def observation(
    spec: FunctionSpec,
    views: Sequence[View],
    backlog: int | None,
    when: float,
    partitions: Callable[[str], int | None],
) -> Observation:
    """What the Decider sees of one function, from its replica views and backlog sample."""
    processed: dict[str, int] = {}
    received: dict[str, int] = {}
    ready = 0
    for view in views:
        if view.get("state") != str(ReplicaState.RUNNING):
            continue
        ready += 1
        # One key per incarnation: a restarted worker's counters start again from zero.
        key = f"{view.get('member', '')}/{view.get('replica')}/{view.get('pid')}"
        processed[key] = int(view.get("processed") or 0)
        received[key] = int(view.get("received") or 0)
    receivers, cap_reason = _receivers(spec, partitions)
    return Observation(
        now=when,
        backlog=backlog,
        processed=processed,
        received=received,
        current=spec.replicas,
        ready=ready,
        receivers=receivers,
        cap_reason=cap_reason,
        key_shared=spec.options.get("ordering") == Ordering.KEY,
        generation=spec.generation,
    )


def _receivers(
    spec: FunctionSpec, partitions: Callable[[str], int | None]
) -> tuple[int | None, str]:
    """Failover (--ordering strict) gives each topic partition to one replica at a time."""
    if spec.options.get("ordering") != Ordering.STRICT or not spec.inputs:
        return None, ""
    counts = [max(1, partitions(topic) or 0) for topic in spec.inputs]
    total = sum(counts)
    return total, (
        f"--ordering strict gives each topic partition to one replica, and the inputs have "
        f"{total} partition(s) in all: more replicas would stand idle (partition the topic "
        f"to scale further)"
    )


class Autoscaler:
    """Runs the Decider of every autoscaled function and applies its decisions."""

    def __init__(
        self,
        writer: ScaleWriter,
        views: Callable[[str], list[View]],
        backlog: BacklogSource | None,
        publish: Callable[[str, dict[str, Any]], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._views = views
        self._backlog = backlog
        self._publish = publish
        self._clock = clock
        self._deciders: dict[str, Decider] = {}
        self._seen: dict[str, float] = {}  # function -> time of the last sample decided on
        self.last: dict[str, tuple[Decision, float]] = {}  # function -> (decision, wall time)
        # The last lag measured: a decision that measures nothing (waiting for new
        # replicas) must not blank the gauge.
        self._lag: dict[str, float] = {}

    def tick(self, specs: Sequence[FunctionSpec], deciding: bool) -> None:
        """Decide for every autoscaled function with a new backlog sample (main loop)."""
        if not deciding or self._backlog is None:
            # Another member leads: its memory (cool-downs, capacity) is the one that counts.
            self._deciders.clear()
            self._seen.clear()
            self.last.clear()
            self._lag.clear()
            return
        wanted = set()
        for spec in specs:
            if not spec.autoscale or spec.desired is not Desired.RUNNING:
                continue
            wanted.add(spec.name)
            # Most ticks (every 100 ms) bring no new sample: nothing to parse or decide.
            sample = self._backlog.sample(spec.name)
            if sample is None or self._seen.get(spec.name) == sample[1]:
                continue
            backlog, when = sample
            self._seen[spec.name] = when
            bounds = spec.bounds()
            assert bounds is not None
            decider = self._deciders.get(spec.name)
            if decider is None or decider.bounds != bounds:
                decider = self._deciders[spec.name] = Decider(bounds)
            obs = observation(spec, self._views(spec.name), backlog, when, self._backlog.partitions)
            self._apply(spec, decider.observe(obs))
        for gone in set(self._deciders) - wanted:
            del self._deciders[gone]
            self._seen.pop(gone, None)
            self.last.pop(gone, None)
            self._lag.pop(gone, None)

    def _apply(self, spec: FunctionSpec, decision: Decision) -> None:
        previous = self.last.get(spec.name)
        self.last[spec.name] = (decision, time.time())
        if decision.lag is not None:
            self._lag[spec.name] = decision.lag
        old = spec.replicas  # before the write (a backend may hand back the same object)
        moved = decision.action in (Action.UP, Action.DOWN)
        if moved and self._writer.autoscale(spec.name, decision.replicas, decision.reason) is None:
            return  # busy (a roll or a drain) or no longer autoscaled: next sample decides
        # A hold is news when it starts; its figures change every interval.
        held = decision.action is Action.HOLD and (
            previous is None or previous[0].action is not Action.HOLD
        )
        if not moved and not held:
            return
        event = {
            "action": str(decision.action),
            "old": old,
            "new": decision.replicas,
            "reason": decision.reason,
            **{k: v for k, v in decision.to_public().items() if k not in ("action", "reason")},
        }
        log.info("autoscale " + str(decision.action), function=spec.name, **event)
        self._publish(spec.name, event)

    def status(self, name: str) -> dict[str, Any] | None:
        """The last decision for ``fsctl status`` (None before the first)."""
        last = self.last.get(name)
        if last is None:
            return None
        decision, at = last
        return {**decision.to_public(), "time": at}

    def gauges(self) -> dict[str, float]:
        """The last lag measured of every function decided on (for the metrics snapshot)."""
        return dict(self._lag)
