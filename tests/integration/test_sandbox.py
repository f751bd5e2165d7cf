"""Function sandbox end to end: a real fsd, real workers, the shared broker, the probe module.

The probe (tests/sandbox_probe/probe.c) answers each command with what it got,
so one function shows what is and is not reachable before and after grants.
"""

from __future__ import annotations

import time
from pathlib import Path

import pulsar
import pytest

from tests.helpers import Fsd, unique, wait_for
from tests.streams import client

pytestmark = pytest.mark.integration

PROBE = Path(__file__).resolve().parents[1] / "sandbox_probe" / "probe.wasm"
TOKEN = "token-from-fsd-environment"


class Probe:
    """Send commands to the function's input topic and read its answers."""

    def __init__(self, url: str, inp: str, out: str) -> None:
        self._client = client(url)
        self._consumer = self._client.subscribe(
            out, "sandbox-test", initial_position=pulsar.InitialPosition.Earliest
        )
        self._producer = self._client.create_producer(inp)

    def ask(self, *commands: str, timeout: float = 60.0) -> set[str]:
        """The answers to ``commands`` (one each; duplicates from redelivery fold away)."""
        for command in commands:
            self._producer.send(command.encode())
        answers: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(answers) < len(commands) and time.monotonic() < deadline:
            try:
                msg = self._consumer.receive(200)
            except pulsar.Timeout:
                continue
            answers.add(msg.data().decode())
            self._consumer.acknowledge(msg)
        assert len(answers) == len(commands), f"got only {sorted(answers)} for {commands}"
        return answers

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def sandbox_fsd(workdir: Path, pulsar_url: str):
    """An fsd whose environment holds a variable the functions may or may not see."""
    daemon = Fsd(workdir, pulsar_url, env={"FS_SANDBOX_TOKEN": TOKEN}).start()
    yield daemon
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.stop()


def test_nothing_without_grants_then_exactly_what_is_granted(sandbox_fsd: Fsd, workdir, pulsar_url):
    fsd = sandbox_fsd
    data = workdir / "data"
    data.mkdir()
    (data / "in.txt").write_text("granted file")
    name, inp, out = unique("sandbox"), unique("sandbox-in"), unique("sandbox-out")

    created = fsd.ctl("create", "-n", name, "-a", str(PROBE), "-i", inp, "-o", out)
    assert created.returncode == 0, created.stderr
    probe = Probe(pulsar_url, inp, out)
    try:
        # No grants: no host file (at its host path or anywhere), no variable of fsd's.
        answers = probe.ask(
            f"read {data}/in.txt", "read /data/in.txt", "env FS_SANDBOX_TOKEN", "environ"
        )
        assert f"read {data}/in.txt: error Capabilities insufficient" in answers
        assert "read /data/in.txt: error Capabilities insufficient" in answers
        assert "env FS_SANDBOX_TOKEN: unset" in answers
        assert "environ: " in answers

        # Read-only directory, fsd's variable by name, a fixed variable.
        updated = fsd.ctl(
            "update", "-n", name, "--allow-dir", f"{data}:/data:ro",
            "--allow-env", "FS_SANDBOX_TOKEN", "--allow-env", "MODE=test",
        )  # fmt: skip
        assert updated.returncode == 0, updated.stderr
        answers = probe.ask(
            "read /data/in.txt", "write /data/out.txt nope", "env FS_SANDBOX_TOKEN", "env MODE"
        )
        assert "read /data/in.txt: granted file" in answers
        assert "write /data/out.txt: error Operation not permitted" in answers
        assert not (data / "out.txt").exists()
        assert f"env FS_SANDBOX_TOKEN={TOKEN}" in answers
        assert "env MODE=test" in answers

        listed = fsd.ctl("list")
        assert f"{name}: sandbox grants dir {data}:/data:ro, env FS_SANDBOX_TOKEN, env MODE" in (
            listed.stdout
        )

        # Read-write now; the environment grants stay as they were.
        updated = fsd.ctl("update", "-n", name, "--allow-dir", f"{data}:/data")
        assert updated.returncode == 0, updated.stderr
        answers = probe.ask("write /data/out.txt from the guest", "env MODE")
        assert answers == {"write /data/out.txt: ok", "env MODE=test"}
        assert (data / "out.txt").read_text() == "from the guest"

        # A granted directory that is gone by the time a replica starts: FATAL, saying why.
        for path in data.iterdir():
            path.unlink()
        data.rmdir()
        restarted = fsd.ctl("restart", "-n", name)
        assert restarted.returncode == 1
        replica = wait_for(
            lambda: next((r for r in fsd.replicas(name) if r["state"] == "FATAL"), None),
            30,
            "the replica to go FATAL",
        )
        assert f"--allow-dir HOST '{data}' is not an existing directory" in replica["last_error"]
    finally:
        probe.close()


def test_bad_grants_are_refused_with_the_flag_and_value(fsd: Fsd, workdir):
    name = unique("sandbox-bad")
    missing = workdir / "no-such-dir"
    base = ["create", "-n", name, "-a", str(PROBE), "-i", unique("in")]

    result = fsd.ctl(*base, "--allow-dir", f"{missing}:/data:ro")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"fsctl: --allow-dir HOST '{missing}' is not an existing directory on fsd's host"
    )
    result = fsd.ctl(*base, "--allow-env", "NOT-A-NAME")
    assert result.returncode == 1
    assert "--allow-env NAME must match [A-Za-z_][A-Za-z0-9_]*, got 'NOT-A-NAME'" in result.stderr
    result = fsd.ctl(*base, "--allow-dir", f"{workdir}:/data:rx")
    assert result.returncode == 2
    assert "--allow-dir mode must be ro or rw, got 'rx'" in result.stderr
    assert fsd.ctl_json("list") == []
