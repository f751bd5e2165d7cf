"""Autoscaling decisions: how many replicas a function needs, from its backlog and rate.

Pure logic with the clock passed in, so it is tested with recorded series
(tests/unit/test_autoscale.py); fsd/autoscaler.py feeds it from the broker's
backlog and the replicas' heartbeat counters and writes what it decides.

The model, once per observation (every ``autoscale_interval`` seconds):

- R, the processing rate: messages the replicas processed over the last
  15 s or so, per second (counter resets of a restarted replica are taken as
  a new start, never as a negative rate);
- A, the arrival rate: R plus the backlog's growth per second;
- lag: how long the backlog B would take at the current rate, B / R;
- capacity: messages per second one replica manages while it has a queue
  (measured only when the backlog held more than a second of work at both
  ends of the interval, so idle replicas never lower it).

Up: when the lag is over the target, the replicas go at once to
ceil((A + B / target) / capacity), bounded by max and by how many replicas can
receive messages at all (Failover: one per partition). Nothing more is
decided until the new replicas are ready and one whole interval was measured
with them.

Down: only after the lag has stayed under a quarter of the target for the
scale-down delay, one replica at a time, never below min, and only when one
replica fewer could take the arrival rate with 25 % to spare (when the
capacity is known). A load that keeps n replicas busy therefore never takes
n down to n - 1 and back: no flapping.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_TARGET_LAG = 10.0  # seconds
DEFAULT_SCALE_DOWN_DELAY = 60.0  # seconds
MIN_TARGET_LAG = 1.0
MAX_SECONDS = 24 * 3600.0
# The lag counts as low under this share of the target (the cool-down runs while it is).
LOW_LAG_SHARE = 0.25
# One replica fewer must manage the arrival rate at this share of its capacity.
HEADROOM = 0.75
# The backlog must hold this many seconds of work for the replicas to count as busy.
SATURATED_SECONDS = 1.0
# Rates are measured over this many seconds of observations, and at least MIN_SPAN.
RATE_WINDOW = 15.0
MIN_SPAN = 3.0


BOUND_FIELDS = frozenset({"min_replicas", "max_replicas", "target_lag", "scale_down_delay"})


class AutoscaleInvalid(ValueError):
    """Bad autoscaling bounds; the message names the field, the value and the fix."""


@dataclass(frozen=True)
class AutoscaleBounds:
    """What the user asked for: the range and how eagerly to move within it."""

    min_replicas: int
    max_replicas: int
    target_lag: float = DEFAULT_TARGET_LAG
    scale_down_delay: float = DEFAULT_SCALE_DOWN_DELAY

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the registry and the wire."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, max_allowed: int) -> AutoscaleBounds:
        """Parse and check; raises AutoscaleInvalid naming the flag to fix."""
        if not isinstance(raw, Mapping):
            raise AutoscaleInvalid(f"autoscale must be a map of bounds, got {raw!r}")
        unknown = sorted(
            set(raw) - {"min_replicas", "max_replicas", "target_lag", "scale_down_delay"}
        )
        if unknown:
            raise AutoscaleInvalid(f"autoscale: unknown field(s) {', '.join(map(str, unknown))}")
        low, high = raw.get("min_replicas"), raw.get("max_replicas")
        for flag, value in (("--min-replicas", low), ("--max-replicas", high)):
            if not _is_int(value) or not 1 <= value <= max_allowed:
                raise AutoscaleInvalid(
                    f"{flag} must be an integer from 1 to {max_allowed}, got {value!r}"
                )
        if low > high:
            raise AutoscaleInvalid(
                f"--min-replicas ({low}) is above --max-replicas ({high}): "
                f"give a minimum no larger than the maximum"
            )
        lag = raw.get("target_lag", DEFAULT_TARGET_LAG)
        delay = raw.get("scale_down_delay", DEFAULT_SCALE_DOWN_DELAY)
        for flag, value, least in (
            ("--target-lag", lag, MIN_TARGET_LAG),
            ("--scale-down-delay", delay, 0.0),
        ):
            if not _is_number(value) or not least <= value <= MAX_SECONDS:
                raise AutoscaleInvalid(
                    f"{flag} must be a number of seconds from {least:g} to {MAX_SECONDS:g}, "
                    f"got {value!r}"
                )
        return cls(int(low), int(high), float(lag), float(delay))

    def clamp(self, replicas: int) -> int:
        """``replicas`` brought into [min, max]."""
        return max(self.min_replicas, min(self.max_replicas, replicas))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Action(enum.StrEnum):
    """What one decision did."""

    UP = "up"
    DOWN = "down"
    HOLD = "hold"  # it would move, but something stops it (the reason says what)
    STEADY = "steady"  # nothing to do


@dataclass(frozen=True)
class Observation:
    """One look at a function: the backlog and every live replica's counters."""

    now: float  # monotonic seconds
    backlog: int | None  # None: the broker's figure is not available
    # Per replica incarnation (e.g. "member/index/pid"): messages processed / received.
    processed: Mapping[str, int] = field(default_factory=dict)
    received: Mapping[str, int] = field(default_factory=dict)
    current: int = 1  # the replicas the function has now (desired)
    ready: int = 1  # of those, RUNNING
    # Most replicas that can receive messages (Failover: one per partition); None: no cap.
    receivers: int | None = None
    cap_reason: str = ""  # why there is such a cap, for the hold message
    key_shared: bool = False  # ordering by key: a replica may get no key at all
    generation: int = 0  # a new module resets the measured capacity


@dataclass(frozen=True)
class Decision:
    """The outcome of one observation, with everything the reason line shows."""

    action: Action
    replicas: int  # desired after this decision
    reason: str
    backlog: int | None = None
    rate: float | None = None  # messages/s processed by all replicas
    per_replica: float | None = None  # capacity used for the decision, msg/s
    lag: float | None = None  # seconds

    def to_public(self) -> dict[str, Any]:
        """For status and events."""
        return {
            "action": str(self.action),
            "replicas": self.replicas,
            "reason": self.reason,
            "backlog": self.backlog,
            "rate": None if self.rate is None else round(self.rate, 1),
            "per_replica": None if self.per_replica is None else round(self.per_replica, 1),
            "lag": None if self.lag is None else round(self.lag, 2),
        }


def _delta(new: Mapping[str, int], old: Mapping[str, int]) -> int:
    """Counted since ``old``: an incarnation new since then counts from zero."""
    total = 0
    for key, value in new.items():
        before = old.get(key, 0)
        total += value - before if value >= before else value
    return total


class Decider:
    """One function's autoscaling memory: recent observations, capacity, the cool-down.

    Rates are measured over the last ``window`` seconds (at least ``min_span``),
    among observations with the same replicas ready: counters reach fsd with
    the heartbeats, about once a second, so a shorter span would see bursts.
    """

    def __init__(
        self, bounds: AutoscaleBounds, window: float = RATE_WINDOW, min_span: float = MIN_SPAN
    ) -> None:
        self.bounds = bounds
        self.window = window
        self.min_span = min_span
        self.capacity: float | None = None
        self._history: deque[Observation] = deque()
        self._low_since: float | None = None
        self._generation: int | None = None

    def _remember(self, obs: Observation) -> Observation | None:
        """Keep ``obs``; return the oldest comparable one within the window, if any."""
        if obs.backlog is None or (self._history and self._history[-1].ready != obs.ready):
            self._history.clear()
        if obs.backlog is None:
            return None
        while self._history and obs.now - self._history[0].now > self.window:
            self._history.popleft()
        base = self._history[0] if self._history else None
        self._history.append(obs)
        if base is None or obs.now - base.now < self.min_span:
            return None
        return base

    def _recent_rate(self, obs: Observation) -> float:
        """Messages per second since the observation before ``obs``."""
        prev = self._history[-2]
        return _delta(obs.processed, prev.processed) / max(obs.now - prev.now, 1e-9)

    def observe(self, obs: Observation) -> Decision:
        """Decide for ``obs``; the caller applies ``replicas`` when the action is UP or DOWN."""
        last = self._remember(obs)
        if self._generation != obs.generation:
            self._generation = obs.generation
            self.capacity = None
        wanted = self.bounds.clamp(obs.current)
        if wanted != obs.current:
            # The bounds changed under the function (update): move into them first.
            self._low_since = None
            action = Action.UP if wanted > obs.current else Action.DOWN
            return Decision(action, wanted, f"{obs.current} is outside the bounds: -> {wanted}")
        if obs.backlog is None:
            return self._hold(obs, "the backlog is not known (broker admin API unreachable?)")
        if obs.ready < obs.current:
            return self._hold(
                obs, f"waiting for replicas to be ready ({obs.ready}/{obs.current})", steady=True
            )
        if last is None or last.backlog is None:
            return self._hold(obs, "measuring the processing rate", steady=True)
        seconds = obs.now - last.now
        rate = _delta(obs.processed, last.processed) / seconds
        arrival = max(0.0, rate + (obs.backlog - last.backlog) / seconds)
        per_replica = rate / obs.ready if obs.ready else 0.0
        busy = min(obs.backlog, last.backlog) > rate * SATURATED_SECONDS
        if busy and per_replica > 0:
            self.capacity = per_replica
        else:
            # A window that began idle understates what a busy replica does; the last
            # interval alone shows it better when a burst has just landed.
            per_replica = max(per_replica, self._recent_rate(obs) / max(1, obs.ready))
        lag = obs.backlog / rate if rate > 0 else (0.0 if obs.backlog == 0 else math.inf)
        figures = {"backlog": obs.backlog, "rate": rate, "lag": None if math.isinf(lag) else lag}
        target = self.bounds.target_lag
        if lag > target:
            self._low_since = None
            return self._up(obs, last, arrival, per_replica, busy, figures)
        if lag >= target * LOW_LAG_SHARE:
            self._low_since = None
            return Decision(
                Action.STEADY, obs.current, f"lag {lag:.1f} s within target {target:g} s", **figures
            )
        return self._maybe_down(obs, arrival, figures)

    def _up(
        self,
        obs: Observation,
        last: Observation,
        arrival: float,
        per_replica: float,
        busy: bool,
        figures: dict[str, Any],
    ) -> Decision:
        backlog, target = obs.backlog or 0, self.bounds.target_lag
        capacity = self.capacity or per_replica
        head = f"backlog {backlog}"
        if per_replica <= 0:
            return self._hold(
                obs,
                f"{head}, nothing processed in the last {obs.now - last.now:.0f} s: "
                f"the function may be failing or stuck (see fsctl logs); not scaling",
                **figures,
            )
        head += f", {capacity:.0f} msg/s per replica, lag {figures['lag']:.1f} s > {target:g} s"
        if obs.key_shared and busy:
            idle = sorted(
                k for k in obs.received if _delta({k: obs.received[k]}, last.received) == 0
            )
            if idle:
                return self._hold(
                    obs,
                    f"{head}: replica {idle[0]} got no message while the backlog was high; "
                    f"ordering by key gives each key to one replica, and there are fewer "
                    f"active keys than replicas",
                    per_replica=capacity,
                    **figures,
                )
        needed = math.ceil((arrival + backlog / target) / capacity)
        wanted = self.bounds.clamp(max(needed, obs.current + 1))
        if obs.receivers is not None and wanted > obs.receivers:
            wanted = max(obs.current, obs.receivers)
            if wanted == obs.current:
                return self._hold(obs, f"{head}: {obs.cap_reason}", per_replica=capacity, **figures)
        if wanted <= obs.current:
            return self._hold(
                obs,
                f"{head}: at --max-replicas {self.bounds.max_replicas}",
                per_replica=capacity,
                **figures,
            )
        return Decision(
            Action.UP, wanted, f"{head}: {obs.current} -> {wanted}", per_replica=capacity, **figures
        )

    def _maybe_down(self, obs: Observation, arrival: float, figures: dict[str, Any]) -> Decision:
        lag_text = f"lag {figures['lag']:.1f} s"
        if obs.current <= self.bounds.min_replicas:
            self._low_since = None
            return Decision(Action.STEADY, obs.current, f"{lag_text}, at --min-replicas", **figures)
        if self._low_since is None:
            self._low_since = obs.now
        waited = obs.now - self._low_since
        delay = self.bounds.scale_down_delay
        if waited < delay:
            return Decision(
                Action.STEADY,
                obs.current,
                f"{lag_text}, low for {waited:.0f} s of the {delay:g} s before scaling down",
                **figures,
            )
        fewer = obs.current - 1
        if self.capacity is not None and arrival > HEADROOM * fewer * self.capacity:
            return Decision(
                Action.STEADY,
                obs.current,
                f"{lag_text}, but {fewer} replica(s) at {self.capacity:.0f} msg/s each would not "
                f"keep up with {arrival:.0f} msg/s arriving",
                per_replica=self.capacity,
                **figures,
            )
        self._low_since = obs.now  # the next step waits a whole delay again
        return Decision(
            Action.DOWN,
            fewer,
            f"backlog {obs.backlog}, {lag_text} low for {waited:.0f} s, "
            f"{arrival:.0f} msg/s arriving: {obs.current} -> {fewer}",
            per_replica=self.capacity,
            **figures,
        )

    def _hold(
        self, obs: Observation, reason: str, steady: bool = False, **figures: Any
    ) -> Decision:
        # Every hold restarts the cool-down: a scale-down needs a clear run of low lag.
        self._low_since = None
        action = Action.STEADY if steady else Action.HOLD
        figures.setdefault("backlog", obs.backlog)
        return Decision(action, obs.current, reason, **figures)
