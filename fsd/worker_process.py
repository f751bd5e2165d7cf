"""One worker process as the operating system sees it: start, signal, reap, judge.

fsd/supervisor.py decides what each replica should be doing and makes every
state transition; this module does what that takes of a process and reads
what a process left behind: how a worker is started (a fresh interpreter,
its output appended to the replica's log), SIGTERM and SIGKILL, collecting an
exit (and the scratch directory a killed worker could not remove), whether a
worker died on a message it was calling alone, and whether one is hung.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from fscommon.worker_spec import WorkerSpec
from fsd.replica import Replica
from fsworker.scratch import remove_scratch_dirs


def worker_command(spec: WorkerSpec) -> list[str]:
    """How a replica's worker is started."""
    return [sys.executable, "-m", "fsworker", "--spec", spec.to_json()]


@dataclass
class Launched:
    """A started worker: its process, a psutil handle for CPU and memory, its log offset."""

    proc: subprocess.Popen[bytes]
    ps: psutil.Process | None
    log_offset: int  # where this incarnation's output starts in the log


def launch(command: list[str], log_path: Path) -> Launched:
    """Start a worker with its stdout and stderr appended to ``log_path``."""
    with open(log_path, "ab") as logfile:
        offset = logfile.tell()
        # fork+exec of a fresh interpreter: never a bare fork of fsd, whose
        # ZeroMQ and Pulsar client threads do not survive one.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,
        )
    try:
        ps = psutil.Process(proc.pid)
        ps.cpu_percent(None)  # primes the CPU% measurement
    except psutil.Error:
        ps = None
    return Launched(proc, ps, offset)


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """Ask a worker to drain and stop (SIGTERM); it may already be gone."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """End a worker that did not stop in time (SIGKILL); it may already be gone."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def exit_code(replica: Replica) -> int | None:
    """The exit code of the replica's worker once it has exited (and forget it), else None."""
    proc = replica.proc
    if proc is None or proc.poll() is None:
        return None
    # A worker killed with SIGKILL could not remove its scratch directory.
    remove_scratch_dirs(replica.function, replica.index, proc.pid)
    replica.proc = None
    replica.ps = None
    return proc.returncode


def blamed_on_message(replica: Replica, pid: int) -> bool:
    """Whether the worker ``pid`` died calling a suspect message alone (and forget the mark)."""
    marker = replica.suspect_marker
    if marker is None:
        return False
    try:
        holder = marker.read_text().strip()
    except OSError:
        return False
    if holder != str(pid):
        return False
    marker.unlink(missing_ok=True)
    return True


def hung(replica: Replica, now: float, heartbeat_timeout: float) -> bool:
    """Nothing moves: no beat for ``heartbeat_timeout`` plus what the last beat announced.

    A worker about to call its guest announces how long that call may take
    (``busy_ms``, bounded by the function's time limit), so a guest working
    inside its limits is not hung however long its limit is (docs/abi.md).
    """
    last = replica.last_heartbeat
    return last is not None and now - last > heartbeat_timeout + replica.busy_for
