import random

from fsd.backoff import Backoff
from fsd.restart_policy import RestartPolicy, RestartTracker


def _tracker(**kw):
    backoff = Backoff(base=1.0, factor=2.0, cap=8.0, jitter=0.0, rng=random.Random(1))
    return RestartTracker(RestartPolicy(backoff=backoff, **kw))


def test_backoff_grows_for_crashes_that_never_get_stable():
    t = _tracker(max_restarts=10, window=1000.0, stable_after=30.0)
    clock = 0.0
    delays = []
    for _ in range(5):
        d = t.on_exit(clock, running_for=5.0)  # crashed after RUNNING, but not stable
        delays.append(d.delay)
        clock += d.delay + 5.0
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0]


def test_stable_run_resets_the_backoff():
    t = _tracker(max_restarts=10, window=1000.0, stable_after=30.0)
    assert t.on_exit(0.0, None).delay == 0.0
    assert t.on_exit(10.0, None).delay == 1.0
    assert t.on_exit(20.0, None).delay == 2.0
    assert t.on_exit(100.0, running_for=45.0).delay == 0.0


def test_too_many_restarts_in_the_window_is_fatal():
    t = _tracker(max_restarts=3, window=60.0)
    for now in (0.0, 1.0, 2.0):
        assert not t.on_exit(now, None).fatal
    decision = t.on_exit(3.0, None)
    assert decision.fatal and "3 restarts within 60s" in decision.reason


def test_old_restarts_leave_the_window():
    t = _tracker(max_restarts=2, window=10.0)
    assert not t.on_exit(0.0, None).fatal
    assert not t.on_exit(1.0, None).fatal
    assert not t.on_exit(11.5, None).fatal  # the two earlier ones are out of the window
    assert not t.on_exit(12.0, None).fatal
    assert t.on_exit(12.5, None).fatal


def test_reset_after_explicit_start():
    t = _tracker(max_restarts=1, window=60.0)
    t.on_exit(0.0, None)
    assert t.on_exit(1.0, None).fatal
    t.reset()
    assert not t.on_exit(2.0, None).fatal


def test_exits_blamed_on_a_message_never_go_fatal_nor_grow_the_backoff():
    """A poison message retried alone may kill the worker max_retries + 1 times (issue 11)."""
    t = _tracker(max_restarts=2, window=60.0)
    assert not t.on_exit(0.0, None).fatal  # the batch that first met it: an ordinary exit
    for now in range(1, 20):
        decision = t.on_exit(float(now), None, blamed_on_message=True)
        assert not decision.fatal and decision.delay == 1.0, decision
        assert "not counted toward max_restarts" in decision.reason
    assert not t.on_exit(30.0, None).fatal  # still one ordinary exit left in the window
    assert t.on_exit(31.0, None).fatal
