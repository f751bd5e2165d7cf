"""Restart delays: exponential, capped, with jitter so replicas do not restart in step."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``delay(n)`` for the n-th consecutive restart (n >= 1)."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    # Each delay is drawn uniformly from [(1 - jitter) * d, d].
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt``."""
        exp = max(attempt - 1, 0)
        # Bound the exponent so a huge attempt count cannot overflow a float.
        raw = min(self.cap, self.base * self.factor ** min(exp, 64))
        return raw * (1.0 - self.jitter * self.rng.random())
