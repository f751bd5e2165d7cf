"""The stall watchdog's decision (fsd/stall.py) with a fake clock."""

from __future__ import annotations

from fsd.stall import StallDetector

TAKEN = ((101, 5),)  # (pid, received) of the one replica


def _run(detector: StallDetector, samples: list[tuple[float, int | None, tuple, bool]]) -> list:
    return [detector.observe("f", t, b, p, busy) for t, b, p, busy in samples]


def test_a_backlog_that_waits_with_no_message_taken_trips_after_the_timeout():
    d = StallDetector(60)
    assert _run(d, [(0, 10, TAKEN, False), (59, 10, TAKEN, False), (60, 12, TAKEN, False)]) == [
        False,
        False,
        True,
    ]
    # The restart gets a whole window of its own.
    assert _run(d, [(61, 12, TAKEN, False), (119, 12, TAKEN, False)]) == [False, False]
    assert d.observe("f", 120, 12, TAKEN, False) is True


def test_progress_a_shrinking_backlog_or_a_busy_guest_restart_the_window():
    d = StallDetector(60)
    d.observe("f", 0, 10, TAKEN, False)
    assert d.observe("f", 50, 10, ((101, 6),), False) is False  # took a message
    assert d.observe("f", 100, 10, ((101, 6),), False) is False  # 50 s since
    assert d.observe("f", 105, 9, ((101, 6),), False) is False  # others consumed
    assert d.observe("f", 160, 9, ((101, 6),), True) is False  # inside a long guest call
    assert d.observe("f", 219, 9, ((101, 6),), False) is False
    assert d.observe("f", 220, 9, ((101, 6),), False) is True


def test_no_backlog_unknown_backlog_no_replicas_or_off_never_trip():
    d = StallDetector(60)
    assert not any(_run(d, [(t, 0, TAKEN, False) for t in range(0, 600, 30)]))
    assert not any(_run(d, [(t, None, TAKEN, False) for t in range(0, 600, 30)]))
    assert not any(_run(d, [(t, 10, (), False) for t in range(0, 600, 30)]))
    off = StallDetector(0)
    assert not any(_run(off, [(t, 10, TAKEN, False) for t in range(0, 600, 30)]))


def test_functions_are_watched_apart_and_forgotten():
    d = StallDetector(10)
    d.observe("f", 0, 5, TAKEN, False)
    d.observe("g", 5, 5, TAKEN, False)
    assert d.observe("f", 10, 5, TAKEN, False) is True
    assert d.observe("g", 10, 5, TAKEN, False) is False
    d.forget({"f"})
    assert d.observe("g", 15, 5, TAKEN, False) is False  # a new window for g


def test_patience_covers_a_retry_delay_longer_than_the_timeout():
    d = StallDetector(60)
    d.observe("f", 0, 1, TAKEN, False, patience=600)
    assert d.observe("f", 599, 1, TAKEN, False, patience=600) is False
    assert d.observe("f", 600, 1, TAKEN, False, patience=600) is True
