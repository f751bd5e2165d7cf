"""When to restart a replica that exited, and when to give up (FATAL).

Pure logic with the clock passed in, so it is unit-tested with a fake clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from fsd.backoff import Backoff


@dataclass
class RestartPolicy:
    """Limits shared by every replica (fsd flags / config file)."""

    max_restarts: int = 5  # restarts allowed within `window`; one more is FATAL
    window: float = 60.0
    # A replica RUNNING this long is stable: its backoff starts over.
    stable_after: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True)
class Decision:
    """What to do after an unexpected exit."""

    fatal: bool
    delay: float
    reason: str


@dataclass
class RestartTracker:
    """Per-replica restart history."""

    policy: RestartPolicy
    consecutive: int = 0
    recent: deque[float] = field(default_factory=deque)

    def reset(self) -> None:
        """Forget the history (an explicit ``fsctl start``)."""
        self.consecutive = 0
        self.recent.clear()

    def on_exit(
        self, now: float, running_for: float | None, blamed_on_message: bool = False
    ) -> Decision:
        """Decide after an unexpected exit at ``now``; ``running_for`` is None if never ready.

        ``blamed_on_message``: the worker died while calling a message that had
        already killed a worker, alone. That message's attempts are counted and it
        is dead-lettered after max_retries + 1 of them (fsworker/attempts.py), so
        the exit neither counts toward max_restarts nor grows the backoff: a poison
        message must not take the replica to FATAL, whatever max_retries is.
        """
        policy = self.policy
        if running_for is not None and running_for >= policy.stable_after:
            self.consecutive = 0
        while self.recent and now - self.recent[0] >= policy.window:
            self.recent.popleft()
        if blamed_on_message:
            # Bounded by the message's attempts, so no growing backoff either: one base delay.
            delay = policy.backoff.delay(1)
            return Decision(
                fatal=False,
                delay=delay,
                reason=f"a message being retried alone killed the worker (not counted toward "
                f"max_restarts); restart in {delay:.2f}s",
            )
        if len(self.recent) >= policy.max_restarts:
            return Decision(
                fatal=True,
                delay=0.0,
                reason=f"{len(self.recent)} restarts within {policy.window:.0f}s; "
                f"not retried until 'fsctl start'",
            )
        self.recent.append(now)
        self.consecutive += 1
        # The first restart after a stable run is immediate: one crash should cost
        # only a process start. Repeated crashes back off exponentially from there.
        delay = 0.0 if self.consecutive == 1 else policy.backoff.delay(self.consecutive - 1)
        return Decision(fatal=False, delay=delay, reason=f"restart in {delay:.2f}s")
