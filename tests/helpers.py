"""Test helpers: real fsd processes, the fsctl CLI, deadlines instead of sleeps."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique(prefix: str) -> str:
    """A name no other test uses (topics, functions)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Fsd:
    """An fsd in a subprocess with its own state dir and ipc endpoint."""

    def __init__(
        self,
        workdir: Path,
        pulsar_url: str | None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.workdir = workdir
        self.extra_env = env or {}
        self.state_dir = workdir / "state"
        self.endpoint = f"ipc://{workdir / 'fsd.sock'}"
        self.pulsar_url = pulsar_url
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "fsd.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FS_ENDPOINT"] = self.endpoint
        # Subprocesses import this checkout, whatever else is installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update(self.extra_env)
        env.pop("FS_PULSAR_URL", None)
        return env

    def start(self, timeout: float = 60.0) -> Fsd:
        cmd = [sys.executable, "-m", "fsd", "--state-dir", str(self.state_dir), "--log-json"]
        cmd += ["--endpoint", self.endpoint, *self.extra]
        if self.pulsar_url:
            cmd += ["--pulsar-url", self.pulsar_url]
            if os.environ.get("FS_TEST_PULSAR_ADMIN_URL"):
                cmd += ["--pulsar-admin-url", os.environ["FS_TEST_PULSAR_ADMIN_URL"]]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=self.workdir
            )
        wait_for(
            lambda: self.proc.poll() is not None or self.ctl("ping").returncode == 0,
            timeout,
            "fsd to answer ping",
            interval=0.2,
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"fsd exited with {self.proc.returncode}:\n{self.log_tail()}")
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def ctl(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run fsctl against this fsd."""
        return subprocess.run(
            [sys.executable, "-m", "fsctl", *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            cwd=REPO,
        )

    def ctl_json(self, *args: str) -> Any:
        """Run fsctl --json and parse its output; fail with stderr if it failed."""
        result = self.ctl(*args, "--json")
        assert result.returncode == 0, f"fsctl {' '.join(args)} failed: {result.stderr}"
        return json.loads(result.stdout)

    def status(self, name: str) -> dict[str, Any]:
        return self.ctl_json("status", "-n", name)[0]

    def replicas(self, name: str) -> list[dict[str, Any]]:
        return self.status(name)["replicas"]

    def wait_running(self, name: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until exactly ``count`` replicas are RUNNING; return them."""

        def check() -> list[dict[str, Any]] | None:
            reps = self.replicas(name)
            ok = len(reps) == count and all(r["state"] == "RUNNING" for r in reps)
            return reps if ok else None

        return wait_for(check, timeout, f"{count} RUNNING replicas of {name}", interval=0.2)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL (the workers must notice by themselves)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
