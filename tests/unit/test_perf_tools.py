"""The benchmarks still measure what they say: the internals they reach into, their baselines."""

from __future__ import annotations

import json

import pytest

from fsworker import module_cache
from fsworker.engine import new_engine
from fsworker.guest import NO_LIMITS, open_guest
from fsworker.module_check import classify
from perf import replica_phases, tp_raw
from perf.tp_drain import person_payload
from tests.helpers import EXAMPLES


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


def test_the_hand_written_loop_does_what_examples_basic_does(tmp_path) -> None:
    # perf/tp_raw.py's "basic" job is the baseline FS basic is compared with: it must give the
    # C example's output for the benchmark's own records, or the comparison is not like for like.
    namespace: dict = {"json": json}
    exec(tp_raw.BASIC_JOB, namespace)
    records = [person_payload(i) for i in (0, 7, 123456)] + [b'{"name":"x","money":1,"expected":5}']
    engine = new_engine()
    module = module_cache.load(engine, EXAMPLES / "basic" / "c" / "basic.wasm", tmp_path / "c")
    guest = open_guest(engine, module, classify(module), tmp_path / "scratch", NO_LIMITS)
    expected = [outputs[0] for outputs in guest.call_batch(records, None)]
    assert [namespace["basic"](r) for r in records] == expected
