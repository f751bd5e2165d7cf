"""The original Function Stream walkthrough, through the fsctl CLI, on a real broker."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.helpers import EXAMPLES, REPO, Fsd, pid_alive, unique, wait_for

pytestmark = pytest.mark.integration

PERSON_IN = '{"name":"rbt","money":2}'
PERSON_OUT = '{"name":"rbt","money":3,"expected":0}'


def start_consumer(
    fsd: Fsd, topic: str, count: int, attach_within: float = 0
) -> subprocess.Popen[str]:
    """`fsctl consume` in the background, returned once it is reading.

    ``attach_within``: seconds to keep trying while the broker answers "TimeOut" (one that
    has just restarted can take longer than a client's operation timeout to serve a topic).
    """
    deadline = time.monotonic() + attach_within
    while True:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fsctl", "consume", "-n", topic, "--count", str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=fsd.env(),
            cwd=REPO,
        )
        # The consumer says so on stderr once its reader is attached.
        line = proc.stderr.readline()
        if "Consuming from" in line:
            return proc
        proc.wait(10)
        assert "TimeOut" in line and time.monotonic() < deadline, line


def produce_and_expect(
    fsd: Fsd,
    inp: str,
    out: str,
    payload: str,
    expected: str,
    timeout: float = 60,
    attach_within: float = 0,
) -> None:
    consumer = start_consumer(fsd, out, 1, attach_within)
    try:
        result = fsd.ctl("produce", "-n", inp, "-c", payload)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "Event produced"
        stdout, _ = consumer.communicate(timeout=timeout)
        assert stdout.strip() == expected
    finally:
        if consumer.poll() is None:
            consumer.kill()


def test_walkthrough_delete_and_restart(fsd: Fsd):
    name, inp, out = unique("example"), unique("example-input"), unique("example-output")
    wasm = str(EXAMPLES / "basic" / "c" / "basic.wasm")

    created = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out, "-r", "1")
    assert created.returncode == 0, created.stderr
    assert "1/1 replicas running" in created.stdout

    produce_and_expect(fsd, inp, out, PERSON_IN, PERSON_OUT)

    listed = fsd.ctl_json("list")
    assert [f["name"] for f in listed] == [name]
    assert listed[0]["inputs"] == [inp] and listed[0]["output"] == out
    status = fsd.status(name)
    replica = status["replicas"][0]
    assert replica["state"] == "RUNNING" and pid_alive(replica["pid"])
    wait_for(lambda: fsd.status(name)["replicas"][0].get("processed") == 1, 10, "counters")

    # Restart fsd: the function comes back by itself and processes a new message.
    old_pid = replica["pid"]
    assert fsd.stop() == 0
    wait_for(lambda: not pid_alive(old_pid), 10, "the worker to exit with fsd")
    fsd.start()
    wait_for(lambda: fsd.status(name)["replicas"][0]["state"] == "RUNNING", 30, "restored replica")
    produce_and_expect(
        fsd, inp, out, '{"name":"again","money":41}', '{"name":"again","money":42,"expected":0}'
    )

    new_pid = fsd.status(name)["replicas"][0]["pid"]
    deleted = fsd.ctl("delete", "-n", name)
    assert deleted.returncode == 0, deleted.stderr
    assert not pid_alive(new_pid), "delete returns after the worker has exited"
    assert fsd.ctl_json("list") == []


def test_stdio_lane_runs_a_wasi_command(fsd: Fsd):
    name, inp, out = unique("stdio"), unique("in"), unique("out")
    wasm = str(EXAMPLES / "basic" / "c" / "basic_stdio.wasm")
    created = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out)
    assert created.returncode == 0, created.stderr
    assert fsd.ctl_json("list")[0]["kind"] == "wasi-stdio"
    produce_and_expect(fsd, inp, out, PERSON_IN, PERSON_OUT)
    assert fsd.ctl("delete", "-n", name).returncode == 0


def test_module_is_copied_at_create(fsd: Fsd, workdir):
    """Changing the user's file after create does not change what runs."""
    name, inp, out = unique("copied"), unique("in"), unique("out")
    user_file = workdir / "mine.wasm"
    user_file.write_bytes((EXAMPLES / "basic" / "c" / "basic.wasm").read_bytes())
    assert fsd.ctl("create", "-n", name, "-a", str(user_file), "-i", inp, "-o", out).returncode == 0
    user_file.write_bytes(b"overwritten")
    # A restart re-reads the module from the package store, not the user's file.
    fsd.stop()
    fsd.start()
    wait_for(lambda: fsd.status(name)["replicas"][0]["state"] == "RUNNING", 30, "restored")
    produce_and_expect(fsd, inp, out, PERSON_IN, PERSON_OUT)
