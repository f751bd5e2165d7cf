"""Lane 3 on the real platform: the Python basic.wasm component through fsd and the broker."""

from __future__ import annotations

import time

import pytest
import wasmtime

from tests.helpers import EXAMPLES, Fsd, unique, wait_for
from tests.streams import Reader, send

pytestmark = pytest.mark.integration

PYTHON_BASIC = str(EXAMPLES / "basic" / "python" / "basic.wasm")
NS = "persistent://public/default/"


def test_python_component_processes_and_dead_letters(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("pycomp"), unique("in"), unique("out")
    outputs, dlq = Reader(pulsar_url, out), Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
    try:
        started = time.monotonic()
        created = fsd.ctl("create", "-n", name, "-a", PYTHON_BASIC, "-i", inp, "-o", out,
                          "--max-retries", "1", "--retry-delay-ms", "200")  # fmt: skip
        assert created.returncode == 0, created.stderr
        fsd.wait_running(name, 1)
        print(f"first create (compile + start): {time.monotonic() - started:.1f} s")
        assert fsd.ctl_json("list")[0]["kind"] == "component"

        send(pulsar_url, inp, [
            b'{"name":"rbt","money":2}',
            b'{"name":"x","money":1.5}',
            '{"name":"zoë","money":1}'.encode(),
        ])  # fmt: skip
        got = sorted(m.data() for m in outputs.wait(2))
        assert got == [
            b'{"name":"rbt","money":3,"expected":0}',
            '{"name":"zoë","money":2,"expected":0}'.encode(),
        ]
        dead = dlq.wait(1)[0]
        assert dead.data() == b'{"name":"x","money":1.5}'
        props = dead.properties()
        assert props["fs-error-kind"] == "error", props
        assert "ValueError: 'money' must be an integer, got 1.5" in props["fs-error"], props

        # A worker restart loads the compiled component from the cache.
        old_pid = fsd.replicas(name)[0]["pid"]
        started = time.monotonic()
        restarted = fsd.ctl("restart", "-n", name)
        assert restarted.returncode == 0, restarted.stderr
        wait_for(
            lambda: (r := fsd.replicas(name)[0])["state"] == "RUNNING" and r["pid"] != old_pid,
            60,
            "the restarted replica",
        )
        restart_s = time.monotonic() - started
        print(f"worker restart: {restart_s:.1f} s")
        send(pulsar_url, inp, [b'{"name":"again","money":41}'])
        assert outputs.wait(3)[2].data() == b'{"name":"again","money":42,"expected":0}'
        assert fsd.ctl("delete", "-n", name).returncode == 0
    finally:
        outputs.close()
        dlq.close()


def test_component_with_the_wrong_process_is_refused_at_create(fsd: Fsd, workdir):
    wasm = workdir / "wrong.wasm"
    wasm.write_bytes(
        wasmtime.wat2wasm(
            """(component
              (core module $m (func (export "f") (param i32) (result i32) unreachable))
              (core instance $i (instantiate $m))
              (func (export "process") (param "input" u32) (result u32)
                (canon lift (core func $i "f"))))"""
        )
    )
    result = fsd.ctl("create", "-n", unique("wrong"), "-a", str(wasm), "-i", "a", "-o", "b")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "component export 'process' has the wrong type" in lines[0], lines[0]
    assert fsd.ctl_json("list") == []


def test_fsd_answers_while_a_large_component_compiles(fsd: Fsd):
    """Compiling happens off fsd's main loop: ping answers while the 18 MB module compiles.

    Issue 12: a create that compiled on the loop froze every other request for
    seconds. This fsd's compiled-module cache is empty, so the create compiles.
    """
    import subprocess
    import sys

    from tests.helpers import REPO

    create = subprocess.Popen(
        [sys.executable, "-m", "fsctl", "create", "-n", unique("big"), "-a", PYTHON_BASIC,
         "-i", unique("in"), "--no-wait"],
        env=fsd.env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    answered_during = []
    while create.poll() is None:
        started = time.monotonic()
        assert fsd.ctl("--timeout", "2", "ping").returncode == 0, "fsd did not answer in 2 s"
        if create.poll() is None:
            answered_during.append(time.monotonic() - started)
    assert create.returncode == 0, create.stderr
    assert answered_during, "the create finished before any ping: nothing was measured"
    print(f"{len(answered_during)} pings answered during the compile, slowest "
          f"{max(answered_during):.2f} s")  # fmt: skip
