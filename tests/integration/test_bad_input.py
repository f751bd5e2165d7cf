"""Bad input to create/delete gets one clear line and exit 1; fsd keeps running."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES, REPO, Fsd, unique

pytestmark = pytest.mark.integration

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")


def _assert_one_line_failure(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fsctl: ")
    assert fragment in lines[0], lines[0]


def test_bad_creates(fsd: Fsd, workdir):
    not_wasm = workdir / "notes.wasm"
    not_wasm.write_text("this is a text file")
    no_exports = fx.write(workdir, "noexports", fx.NO_EXPORTS)
    unknown_import = fx.write(workdir, "imports", fx.UNKNOWN_IMPORT)
    inp, out = unique("in"), unique("out")
    good = fsd.ctl("create", "-n", "dup", "-a", BASIC, "-i", inp, "-o", out)
    assert good.returncode == 0, good.stderr

    cases = [
        (["-n", "a", "-a", str(workdir / "missing.wasm")], "cannot read module"),
        (["-n", "a", "-a", str(not_wasm)], "not a WebAssembly module"),
        (["-n", "a", "-a", str(no_exports)], "neither the Function Stream ABI"),
        (["-n", "a", "-a", str(unknown_import)], "env.launch_missiles"),
        (["-n", "dup", "-a", BASIC], "already exists"),
        (["-n", "a", "-a", BASIC, "-r", "0"], "replicas must be an integer from 1"),
        (["-n", "a/b", "-a", BASIC], "invalid function name 'a/b'"),
    ]
    for args, fragment in cases:
        result = fsd.ctl("create", *args, "-i", unique("in"), "-o", unique("out"))
        _assert_one_line_failure(result, fragment)
        assert fsd.ctl("ping").returncode == 0, "fsd must survive bad input"

    assert [f["name"] for f in fsd.ctl_json("list")] == ["dup"]
    _assert_one_line_failure(fsd.ctl("delete", "-n", "nosuch"), "function 'nosuch' does not exist")
    _assert_one_line_failure(fsd.ctl("status", "-n", "nosuch"), "does not exist")


def test_trap_in_initialize_is_reported_and_fatal(fsd: Fsd, workdir):
    path = fx.write(workdir, "trapinit", fx.TRAP_IN_INITIALIZE)
    name = unique("trapinit")
    result = fsd.ctl("create", "-n", name, "-a", str(path), "-i", unique("in"), "-o", unique("o"))
    _assert_one_line_failure(result, "replica 0 is FATAL")
    replica = fsd.status(name)["replicas"][0]
    assert replica["state"] == "FATAL"
    assert replica["last_exit"] == "exit 65 (BAD_MODULE)"
    assert "failed to initialise" in replica["last_error"]
    assert fsd.ctl("ping").returncode == 0


def test_fsd_down_gives_exit_3_quickly(workdir):
    from tests.helpers import Fsd as _Fsd

    missing = _Fsd(workdir, None)
    for args in (
        ["list"],
        ["status"],
        ["delete", "-n", "x"],
        ["create", "-n", "x", "-a", BASIC, "-i", "a", "-o", "b"],
    ):
        started = time.monotonic()
        result = missing.ctl(*args)
        assert result.returncode == 3, (args, result.stderr)
        assert f"could not reach fsd at {missing.endpoint}" in result.stderr
        assert time.monotonic() - started < 10


def test_stale_socket_without_fsd_times_out_with_exit_3(workdir):
    """A socket file left behind by a dead fsd: no reply, a clear timeout, exit 3."""
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    endpoint = f"ipc://{workdir / 'stale.sock'}"
    sock.bind(endpoint)  # binds but never answers
    try:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "fsctl", "--endpoint", endpoint, "--timeout", "2", "list"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=30,
        )
        assert result.returncode == 3
        assert "no reply within 2s" in result.stderr
        assert time.monotonic() - started < 10
    finally:
        sock.close()
        ctx.term()
