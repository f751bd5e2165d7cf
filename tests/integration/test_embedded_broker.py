"""fsd with no broker configured runs and supervises a real Pulsar standalone itself."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from fsctl.client import Unreachable, call
from tests.helpers import EXAMPLES, Fsd, free_port, pid_alive, unique, wait_for
from tests.integration.test_walkthrough import produce_and_expect

pytestmark = pytest.mark.integration


def test_embedded_standalone_lifecycle(workdir):
    ports = ["--pulsar-port", str(free_port()), "--pulsar-web-port", str(free_port())]
    fsd = Fsd(workdir, None, extra=ports).start(timeout=180)
    try:
        info = fsd.ctl_json("info")
        assert info["embedded_broker"] is True
        assert info["pulsar_url"] == f"pulsar://127.0.0.1:{ports[1]}"
        broker_pid = info["broker_pid"]
        assert pid_alive(broker_pid)
        assert (fsd.state_dir / "pulsar" / "metadata").is_dir(), "broker data is under state dir"

        name, inp, out = unique("emb"), unique("in"), unique("out")
        wasm = str(EXAMPLES / "basic" / "c" / "basic.wasm")
        assert fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out).returncode == 0
        produce_and_expect(
            fsd, inp, out, '{"name":"e","money":1}', '{"name":"e","money":2,"expected":0}'
        )
        worker_pid = fsd.status(name)["replicas"][0]["pid"]

        # kill -9: neither the broker nor the worker may outlive fsd.
        fsd.kill()
        wait_for(lambda: not pid_alive(worker_pid), 10, "the worker to die with fsd")
        wait_for(lambda: not pid_alive(broker_pid), 30, "the broker to die with fsd")

        fsd.start(timeout=180)
        wait_for(lambda: fsd.status(name)["replicas"][0]["state"] == "RUNNING", 60, "restore")
        produce_and_expect(
            fsd, inp, out, '{"name":"f","money":5}', '{"name":"f","money":6,"expected":0}'
        )
        broker_pid = fsd.ctl_json("info")["broker_pid"]
        assert fsd.stop() == 0
        assert not pid_alive(broker_pid), "SIGTERM stops the embedded broker too"
    finally:
        fsd.kill()


def _timed_call(fsd: Fsd, cmd: str, limit: float) -> tuple[Any, float]:
    """One request over the wire protocol; fails if fsd takes longer than ``limit`` to answer."""
    began = time.monotonic()
    try:
        data = call(fsd.endpoint, cmd, {}, timeout=limit)
    except Unreachable as exc:
        raise AssertionError(f"fsd did not answer {cmd} within {limit}s: {exc}") from None
    took = time.monotonic() - began
    assert took <= limit, f"{cmd} took {took:.2f}s"
    return data, took


def test_fsd_keeps_answering_while_its_broker_restarts(workdir):
    ports = ["--pulsar-port", str(free_port()), "--pulsar-web-port", str(free_port())]
    fsd = Fsd(workdir, None, extra=ports).start(timeout=180)
    try:
        name, inp, out = unique("emb"), unique("in"), unique("out")
        wasm = str(EXAMPLES / "basic" / "c" / "basic.wasm")
        assert fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out).returncode == 0
        produce_and_expect(
            fsd, inp, out, '{"name":"a","money":1}', '{"name":"a","money":2,"expected":0}'
        )
        info = fsd.ctl_json("info")
        assert info["broker"]["state"] == "RUNNING"
        old_pid = info["broker_pid"]

        os.kill(old_pid, signal.SIGKILL)
        # Until the broker is back, fsd answers ping and status within a second, every time,
        # and status says the broker is restarting and since when.
        phases: set[str] = set()
        slowest = 0.0
        cli_said_restarting = False
        deadline = time.monotonic() + 300
        last_cli = 0.0
        while True:
            assert time.monotonic() < deadline, f"the broker never came back; seen {phases}"
            _, took_ping = _timed_call(fsd, "ping", 1.0)
            statuses, took_status = _timed_call(fsd, "status", 1.0)
            slowest = max(slowest, took_ping, took_status)
            broker = statuses[0]["broker"]
            phases.add(broker["state"])
            if broker["state"] != "RUNNING":
                assert broker["down_since"] is not None, broker
            elif broker["pid"] not in (None, old_pid):
                break
            if time.monotonic() - last_cli > 5 and broker["state"] != "RUNNING":
                # The CLI too: a one-second timeout, and the text names the broker's phase.
                result = fsd.ctl("--timeout", "1", "status", timeout=30)
                assert result.returncode == 0, result.stderr
                cli_said_restarting |= "broker: RESTARTING since" in result.stdout
                last_cli = time.monotonic()
            time.sleep(0.2)
        assert "RESTARTING" in phases, phases
        assert cli_said_restarting, "fsctl status never said the broker was restarting"
        info = fsd.ctl_json("info")
        assert info["broker"]["restarts"] == 1 and pid_alive(info["broker_pid"])

        # The function comes back by itself: its output flows again.
        fsd.wait_running(name, 1, timeout=120)
        produce_and_expect(
            fsd, inp, out, '{"name":"b","money":7}', '{"name":"b","money":8,"expected":0}'
        )
        print(f"slowest ping/status while the broker restarted: {slowest:.3f}s")
    finally:
        fsd.kill()
