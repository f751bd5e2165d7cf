"""A worker killed with SIGKILL leaves no scratch directory behind in $TMPDIR."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, Fsd, pid_alive, unique, wait_for

pytestmark = pytest.mark.integration


def _scratch(tmp: Path, name: str) -> list[str]:
    return sorted(p.name for p in tmp.glob(f"fsworker-{name}-*"))


def test_sigkilled_workers_leave_no_scratch_dirs(workdir, pulsar_url: str):
    tmp = workdir / "tmp"
    tmp.mkdir()
    fsd = Fsd(workdir, pulsar_url, env={"TMPDIR": str(tmp)}).start()
    try:
        name = unique("scratch")
        wasm = str(EXAMPLES / "basic" / "c" / "basic.wasm")
        result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", unique("in"), "-r", "2")
        assert result.returncode == 0, result.stderr

        def one_dir_per_live_worker() -> list[str] | None:
            pids = [r["pid"] for r in fsd.replicas(name) if r["state"] == "RUNNING"]
            want = sorted(f"{name}-{i}-{pid}-" for i, pid in enumerate(pids))
            have = _scratch(tmp, name)
            ok = len(pids) == 2 and [d[len("fsworker-") : -8] for d in have] == want
            return have if ok else None

        wait_for(one_dir_per_live_worker, 60, "a scratch dir per running worker")
        victims = [r["pid"] for r in fsd.replicas(name)]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: not set(victims) & {r["pid"] for r in fsd.wait_running(name, 2)},
            60,
            "replacement workers",
        )
        wait_for(one_dir_per_live_worker, 30, "the killed workers' dirs to be removed")

        # Workers and fsd both killed (fsd frozen so it cannot reap): the dirs stay
        # until the next workers of the same replicas start and remove them.
        workers = [r["pid"] for r in fsd.replicas(name)]
        assert fsd.proc is not None
        os.kill(fsd.proc.pid, signal.SIGSTOP)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not any(pid_alive(p) for p in workers), 10, "workers to die")
        fsd.kill()
        assert len(_scratch(tmp, name)) == 2, "nobody was left to remove them"
        fsd.start()
        fsd.wait_running(name, 2)
        wait_for(one_dir_per_live_worker, 30, "only the new workers' dirs")
        assert fsd.stop() == 0
        assert _scratch(tmp, name) == [], "a clean stop removes every scratch dir"
    finally:
        fsd.kill()
