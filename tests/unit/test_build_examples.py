"""scripts/build-examples.sh (make examples): what it built, skipped (and why), failed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import REPO

ZIG_SKIP = "skip: zig: not installed; bash scripts/toolchains/zig.sh"


def _example(root: Path, name: str, body: str) -> None:
    path = root / name / "build.sh"
    path.parent.mkdir(parents=True)
    path.write_text(f"#!/bin/sh\n{body}\n")


def _build_all(root: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "FS_EXAMPLES_DIR": str(root)}
    script = str(REPO / "scripts" / "build-examples.sh")
    return subprocess.run(["bash", script], capture_output=True, text=True, env=env, check=False)


def test_reports_built_skipped_with_reason_and_failed(tmp_path: Path) -> None:
    _example(tmp_path, "basic/c", "echo building; exit 0")
    _example(tmp_path, "basic/zig", f"echo '{ZIG_SKIP}' >&2; exit 77")
    _example(tmp_path, "wordcount/go", "echo 'go: compile error' >&2; exit 2")
    result = _build_all(tmp_path)
    assert result.returncode == 1, result
    assert "built:   basic/c" in result.stdout
    assert f"skipped: basic/zig: {ZIG_SKIP}" in result.stdout
    assert "FAILED:  wordcount/go" in result.stdout
    assert "go: compile error" in result.stderr


def test_only_skips_is_success(tmp_path: Path) -> None:
    _example(tmp_path, "basic/js", "echo 'skip: js: no npm' >&2; exit 77")
    result = _build_all(tmp_path)
    assert result.returncode == 0, result
    assert "skipped: basic/js: skip: js: no npm" in result.stdout
