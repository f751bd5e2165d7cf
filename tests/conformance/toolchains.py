"""Which examples exist in which languages, and building them from source.

Every example has `examples/<example>/<lang>/build.sh`, which writes
`<example>.wasm` next to itself, or exits 77 with one `skip: ...` line when the
machine lacks the toolchain. CI installs every toolchain (`make test` runs the
setup with FS_SETUP_TOOLCHAINS=1) and sets FS_REQUIRE_TOOLCHAINS=1, so a
missing one fails there instead of skipping. FS_CONFORMANCE_PREBUILT=1 uses the
committed modules without building (a quick local run).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import EXAMPLES

LANGUAGES = ["c", "rust", "go", "zig", "assemblyscript", "python", "js"]
# The examples each language must have (issue 6): basic everywhere, wordcount in three.
REQUIRED = {"basic": LANGUAGES, "wordcount": ["c", "rust", "go"]}
SKIP = 77


class Unavailable(Exception):
    """This machine cannot build the example: the reason, one line."""


def matrix() -> list[tuple[str, str]]:
    """(example, language) pairs: the required ones plus any other example directory."""
    pairs = {(ex, lang) for ex, langs in REQUIRED.items() for lang in langs}
    for build in EXAMPLES.glob("*/*/build.sh"):
        pairs.add((build.parent.parent.name, build.parent.name))
    return sorted(pairs, key=lambda p: (p[0], LANGUAGES.index(p[1]) if p[1] in LANGUAGES else 99))


def module_path(example: str, lang: str) -> Path:
    """Where the example's build puts its module."""
    return EXAMPLES / example / lang / f"{example}.wasm"


def build(example: str, lang: str) -> Path:
    """Build the example from source (or take the committed module); raise Unavailable."""
    script = EXAMPLES / example / lang / "build.sh"
    if not script.exists():
        raise AssertionError(f"examples/{example}/{lang}/build.sh is missing")
    wasm = module_path(example, lang)
    if os.environ.get("FS_CONFORMANCE_PREBUILT") == "1" and wasm.exists():
        return wasm
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode == SKIP:
        reason = (result.stderr.strip().splitlines() or [f"{lang}: toolchain missing"])[-1]
        raise Unavailable(reason)
    if result.returncode != 0:
        raise AssertionError(
            f"examples/{example}/{lang}/build.sh failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    assert wasm.exists(), f"{script} succeeded but wrote no {wasm.name}"
    return wasm
