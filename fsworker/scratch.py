"""A replica's scratch directory under $TMPDIR, and removing it after the worker is gone.

The worker removes its own directory when it exits, but a worker killed with
SIGKILL runs no cleanup. So the name carries the worker's pid,
``fsworker-<function>-<replica>-<pid>-<random>``: fsd removes that
directory when it reaps the pid, and a starting worker removes the ones of
its function and replica whose pid is gone (left behind when fsd itself was
killed).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _prefix(function: str, replica: int) -> str:
    return f"fsworker-{function}-{replica}-"


def make_scratch_dir(function: str, replica: int) -> Path:
    """A new private (0700) scratch directory for this worker process."""
    return Path(tempfile.mkdtemp(prefix=f"{_prefix(function, replica)}{os.getpid()}-"))


def _scratch_dirs(function: str, replica: int) -> list[tuple[Path, int]]:
    """This replica's scratch directories and the pid in each name.

    mkdtemp's random tail has no '-', and replica and pid are digits, so a
    name parses one way only: another function whose name extends this one
    never matches.
    """
    prefix = _prefix(function, replica)
    pattern = re.compile(re.escape(prefix) + r"(\d+)-[^-/]+")
    found = []
    for path in Path(tempfile.gettempdir()).glob(glob.escape(prefix) + "*"):
        match = pattern.fullmatch(path.name)
        if match is None:
            continue
        try:
            st = path.lstat()
        except OSError:
            continue
        # Only real directories of our own user: never follow a planted symlink.
        if path.is_dir() and not path.is_symlink() and st.st_uid == os.getuid():
            found.append((path, int(match.group(1))))
    return found


def remove_scratch_dirs(
    function: str, replica: int, gone: Callable[[int], bool] | int
) -> list[Path]:
    """Remove the replica's scratch directories of a pid that is gone; returns them.

    ``gone`` is the pid fsd just reaped, or a test of whether a pid is gone.
    """
    is_gone = (lambda pid: pid == gone) if isinstance(gone, int) else gone
    removed = []
    for path, pid in _scratch_dirs(function, replica):
        if is_gone(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def pid_gone(pid: int) -> bool:
    """True if no process has this pid, or only its zombie (it can no longer use the dir)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The state follows the command name, which is in parentheses.
            return fh.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
