import random

from fsd.backoff import Backoff


def test_grows_exponentially_until_the_cap():
    b = Backoff(base=1.0, factor=2.0, cap=10.0, jitter=0.0)
    assert [b.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_jitter_stays_within_bounds_and_varies():
    b = Backoff(base=1.0, factor=2.0, cap=30.0, jitter=0.5, rng=random.Random(42))
    delays = [b.delay(3) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100


def test_huge_attempt_counts_do_not_overflow():
    assert Backoff(cap=30.0, jitter=0.0).delay(10_000) == 30.0
