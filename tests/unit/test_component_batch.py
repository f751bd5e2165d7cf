"""Lane 3's batch entry point, ``process-batch`` (fsworker/guest_component*.py), no broker.

The probe components (tests/component_probe) are real componentize-py and
componentize-js builds of one function: world ``batch-processor`` (with
``process-batch``) and, for Python, world ``processor`` (``process`` only).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from fsworker import module_cache
from fsworker.engine import new_engine
from fsworker.guest import ERROR, TIMEOUT, TRAP, GuestError, GuestLimits, open_guest
from fsworker.guest import FUEL as FUEL_KIND
from fsworker.guest_component import ComponentGuest
from fsworker.host_context import HostContext, MessageMeta
from fsworker.module_check import classify
from fsworker.state_store import SqliteStateStore
from tests.component_probe import probe_components

CACHE = Path(tempfile.gettempdir()) / "fs-test-compiled"
BATCHED = ["probe-py-batch", "probe-js-batch"]


@pytest.fixture(scope="module")
def engine():
    return new_engine()


@pytest.fixture(scope="module")
def probes(engine):
    return {
        name: module_cache.load(engine, path, CACHE) for name, path in probe_components().items()
    }


def _guest(engine, component, tmp_path, *, timeout_ms=1000, batch=True):
    store = SqliteStateStore(tmp_path / f"state-{id(component)}-{batch}.sqlite3")
    host = HostContext({}, store)
    guest = open_guest(
        engine, component, classify(component), tmp_path, GuestLimits(timeout_ms=timeout_ms),
        batch=batch, host=host,
    )  # fmt: skip
    assert isinstance(guest, ComponentGuest)
    return guest, store


def _metas(inputs):
    return [
        MessageMeta(key=f"k{i}", properties={"p": f"v{i}"}, event_time=100 + i)
        for i in range(len(inputs))
    ]


def _seen(outcome):
    """The probe's record without its entry-point flag (which must differ)."""
    seen = json.loads(outcome[0])
    return {k: v for k, v in seen.items() if k != "batched"}, seen["batched"]


def _meta(guest):
    return [(m.key, m.properties, m.event_time) for m in guest.last_output_meta]


@pytest.mark.parametrize("name", BATCHED)
def test_batch_gives_what_one_call_per_input_gives(engine, probes, tmp_path, name):
    inputs = [f"m{i}".encode() for i in range(12)]
    batched, _ = _guest(engine, probes[name], tmp_path)
    single, _ = _guest(engine, probes[name], tmp_path, batch=False)
    assert batched.batched and not single.batched
    got = batched.call_batch(inputs, _metas(inputs))
    want = single.call_batch(inputs, _metas(inputs))
    assert [_seen(o)[1] for o in got] == [True] * len(inputs)
    assert [_seen(o)[1] for o in want] == [False] * len(inputs)
    assert [_seen(o)[0] for o in got] == [_seen(o)[0] for o in want]
    # Each input saw its own metadata and its overrides went to its own outputs.
    for i, outcome in enumerate(got):
        seen = _seen(outcome)[0]
        assert seen == {"in": f"m{i}", "key": f"k{i}", "p": f"v{i}", "t": 100 + i, "count": i + 1}
    assert _meta(batched) == _meta(single)
    assert _meta(batched) == [(f"key-m{i}", {"from": f"m{i}"}, 1000 + i) for i in range(12)]


def test_a_component_with_only_process_runs_one_call_per_input(engine, probes, tmp_path):
    guest, _ = _guest(engine, probes["probe-py-single"], tmp_path)
    assert not guest.batched
    inputs = [b"m0", b"m1"]
    got = guest.call_batch(inputs, _metas(inputs))
    assert [_seen(o) for o in got] == [
        ({"in": "m0", "key": "k0", "p": "v0", "t": 100, "count": 1}, False),
        ({"in": "m1", "key": "k1", "p": "v1", "t": 101, "count": 2}, False),
    ]


@pytest.mark.parametrize(
    ("name", "bad", "kind"),
    [
        ("probe-py-batch", b"abort", TRAP),
        ("probe-py-batch", b"loop", TIMEOUT),
        ("probe-js-batch", b"loop", TIMEOUT),
    ],
)
def test_a_whole_call_failure_fails_only_the_input_that_causes_it(
    engine, probes, tmp_path, name, bad, kind
):
    guest, _ = _guest(engine, probes[name], tmp_path, timeout_ms=200)
    inputs = [b"m0", b"m1", bad, b"m3"]
    got = guest.call_batch(inputs, _metas(inputs))
    assert isinstance(got[2], GuestError) and got[2].kind == kind, got[2]
    # The others ran again one per call: each counted once, the failed call's writes undone.
    assert [_seen(got[i]) for i in (0, 1, 3)] == [
        ({"in": f"m{i}", "key": f"k{i}", "p": f"v{i}", "t": 100 + i, "count": n}, False)
        for i, n in ((0, 1), (1, 2), (3, 3))
    ]
    assert _meta(guest)[2] == (None, {}, None)
    assert guest.instances == 3  # rebuilt after the batch call and after the input's own
    # And the next batch goes through process-batch again.
    again = guest.call_batch([b"m4", b"m5"], _metas([b"m4", b"m5"]))
    assert [_seen(o)[1] for o in again] == [True, True]


@pytest.mark.parametrize("name", BATCHED)
def test_an_input_that_raises_fails_alone_and_keeps_no_state(engine, probes, tmp_path, name):
    guest, _ = _guest(engine, probes[name], tmp_path)
    inputs = [b"m0", b"fail", b"m2"]
    got = guest.call_batch(inputs, _metas(inputs))
    assert isinstance(got[1], GuestError) and got[1].kind == ERROR
    assert "fail asked" in str(got[1])
    # The batch wrote state and an input failed: its inputs re-ran one per call.
    assert [_seen(got[i])[0]["count"] for i in (0, 2)] == [1, 2]


def test_time_limit_of_a_batch_call_scales_with_its_inputs(engine, probes, tmp_path):
    guest, _ = _guest(engine, probes["probe-py-batch"], tmp_path, timeout_ms=200)
    asked: list[float] = []
    guest.before_call = asked.append
    guest.call_batch([b"m0", b"m1", b"m2"], _metas([b"m0"] * 3))
    assert asked == [0.6]
    guest.call_batch([b"m0"], _metas([b"m0"]))
    assert asked == [0.6, 0.2]


# --- fuel ------------------------------------------------------------------------------------

# Per-message fuel well above what one probe input takes (~140k Python, ~600k JS,
# more for the first call on a fresh JS instance) and well below what 10 take:
# a batch call of 10 fits only if its fuel is 10 times the per-message fuel.
FUEL = {"probe-py-batch": 300_000, "probe-js-batch": 3_000_000}


@pytest.mark.parametrize("name", BATCHED)
def test_fuel_of_a_batch_call_scales_with_its_inputs(tmp_path, name):
    engine = new_engine(fuel=True)
    component = module_cache.load(engine, probe_components()[name], CACHE, fuel=True)
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    guest = open_guest(
        engine, component, classify(component), tmp_path, GuestLimits(fuel=FUEL[name]),
        host=HostContext({}, store),
    )  # fmt: skip
    inputs = [f"m{i}".encode() for i in range(10)]
    got = guest.call_batch(inputs, _metas(inputs))
    assert [_seen(o)[1] for o in got] == [True] * 10  # no fallback: the call had 10x the fuel
    # A runaway input still runs out of its own fuel, alone.
    got = guest.call_batch([b"m0", b"loop", b"m2"], _metas([b"m0"] * 3))
    assert isinstance(got[1], GuestError) and got[1].kind == FUEL_KIND, got[1]
    assert [_seen(got[i])[0]["in"] for i in (0, 2)] == ["m0", "m2"]
