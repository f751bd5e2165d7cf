"""The probe components (app.py, app.js), built from source once per source version.

``probe_components()`` runs build.sh into a directory of the temp dir named by
a hash of everything the build reads (the apps, the SDKs, wit/), so test runs
share a build until one of those changes; it skips the test when a toolchain
is missing.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SOURCES = [
    HERE / "app.py",
    HERE / "app.js",
    HERE / "build.sh",
    ROOT / "sdks" / "python" / "function_stream" / "__init__.py",
    ROOT / "sdks" / "js" / "function_stream.js",
    ROOT / "sdks" / "js" / "build-component.sh",
    ROOT / "wit" / "function-stream.wit",
]
NAMES = ("probe-py-batch", "probe-py-single", "probe-js-batch")
SKIPPED = 77  # build.sh: a toolchain is missing


def probe_components() -> dict[str, Path]:
    """``{name: path}`` of the built probe components (NAMES)."""
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.read_bytes())
    out = Path(tempfile.gettempdir()) / f"fs-test-probe-{digest.hexdigest()[:16]}"
    paths = {name: out / f"{name}.wasm" for name in NAMES}
    if all(path.exists() for path in paths.values()):
        return paths
    partial = out.with_suffix(".partial")
    partial.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(
        ["sh", str(HERE / "build.sh"), str(partial)], capture_output=True, text=True, timeout=600
    )
    if built.returncode == SKIPPED:
        pytest.skip(built.stderr.strip())
    assert built.returncode == 0, f"building the probe components failed:\n{built.stderr}"
    partial.rename(out)
    return paths
