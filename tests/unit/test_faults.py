"""FSWORKER_FAULT parsing (fsworker/faults.py): which function, which fault, once-only markers."""

from __future__ import annotations

from fsworker.faults import Fault, abort_prefix, fault_for


def test_only_the_named_function_gets_its_fault(monkeypatch):
    monkeypatch.setenv("FSWORKER_FAULT", "a:exit-at-start,b:never-ready")
    assert fault_for("a") is Fault.EXIT_AT_START
    assert fault_for("b") is Fault.NEVER_READY
    assert fault_for("c") is None


def test_an_unknown_fault_is_ignored_not_half_applied(monkeypatch):
    monkeypatch.setenv("FSWORKER_FAULT", "a:exit-at-strat")
    assert fault_for("a") is None


def test_a_marker_makes_the_fault_fire_once(monkeypatch, tmp_path):
    marker = tmp_path / "fired"
    monkeypatch.setenv("FSWORKER_FAULT", f"a:crash-after-publish:{marker}")
    assert fault_for("a") is Fault.CRASH_AFTER_PUBLISH
    assert marker.exists()
    assert fault_for("a") is None


def test_abort_prefix(monkeypatch):
    monkeypatch.setenv("FSWORKER_ABORT_ON", "a:K,b:")
    assert abort_prefix("a") == b"K"
    assert abort_prefix("b") is None  # an empty prefix would abort on everything
    assert abort_prefix("c") is None
