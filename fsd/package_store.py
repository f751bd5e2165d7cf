"""Content-addressed store of wasm modules: ``<state>/packages/<sha256>.wasm``.

A function refers to its module by hash, so a user editing or deleting the
file they registered never changes what runs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class PackageStore:
    """Immutable wasm blobs keyed by their SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the module with this hash lives."""
        return self.root / f"{sha256}.wasm"

    def put(self, wasm: bytes) -> str:
        """Store ``wasm`` (atomically, once) and return its hash."""
        sha = hashlib.sha256(wasm).hexdigest()
        target = self.path(sha)
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(wasm)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        return sha

    def has(self, sha256: str) -> bool:
        """True if the module is stored."""
        return self.path(sha256).exists()
