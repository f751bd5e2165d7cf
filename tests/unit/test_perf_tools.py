"""The benchmarks that reach into the worker's internals still find them."""

from __future__ import annotations

import pytest

from perf import replica_phases


def test_replica_phases_wraps_methods_that_exist() -> None:
    # perf/replica_phases.py times these by name; a rename would only show when someone runs it.
    for cls, name in replica_phases.WRAPPED:
        assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name} is gone"


def test_the_window_counts_from_ten_percent_to_the_end() -> None:
    window = replica_phases.Window(1000)
    window.mark(50, {"a": 1.0})
    assert not window.result  # before 10 %: not counting yet
    window.mark(100, {"a": 1.0})
    window.mark(600, {"a": 1.0009})
    assert not window.result  # not at N yet
    window.mark(1000, {"a": 1.0018})
    # 1.8 ms of CPU over the 900 messages after the mark: 2 us each.
    assert window.result["a"] == pytest.approx(2.0)
    assert window.result["msg/s"] > 0
