"""The processing-latency histogram a worker keeps and fsd exports (fixed, shared buckets).

A worker observes each batch once: every message of a batch waits for the
whole batch (they are acknowledged together), so the batch's duration is each
of its messages' processing latency and is counted ``len(batch)`` times. The
histogram's count is therefore the number of messages handled, and its sum
their total processing time, at the cost of one ``bisect`` per batch.

The bucket bounds are part of the worker -> fsd heartbeat contract: a
heartbeat carries one count per bucket (not cumulative), the last one for
values above every bound (+Inf), in the order of ``LATENCY_BUCKETS``.
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds in seconds (Prometheus "le", inclusive). From half a millisecond
# (a batch of one small message through a fast guest) up to 10 s (past the
# default 5 s per-message time limit, so timeouts land in a bucket of their own).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class LatencyHistogram:
    """Plain-int bucket counts; updated from one thread only (the processing loop)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float, weight: int = 1) -> None:
        """Count ``weight`` observations of ``seconds`` (a batch of ``weight`` messages)."""
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le).
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += weight
        self.sum += seconds * weight

    @property
    def count(self) -> int:
        """How many observations so far."""
        return sum(self.counts)


def cumulative(counts: list[int]) -> list[int]:
    """Per-bucket counts -> the cumulative counts Prometheus exposes (le buckets)."""
    out = []
    total = 0
    for c in counts:
        total += c
        out.append(total)
    return out
