"""What of the host a guest may see through WASI: granted directories and variables.

By default nothing: no preopened directory, no environment, no arguments (the
guest's stderr goes to the replica's log). A function's options can grant
directories (``--allow-dir HOST:GUEST[:ro]``) and environment variables
(``--allow-env NAME`` passes fsd's value, ``--allow-env NAME=VALUE`` a fixed
one); see docs/security.md. WASI preview 1 as wasmtime-py offers it has no
sockets, so there is no network access to grant.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
import wasmtime

from fscommon.function_options import FunctionOptions

log = structlog.get_logger("fsworker")


class SandboxError(Exception):
    """A grant cannot be applied (e.g. the granted directory went away)."""


@dataclass(frozen=True)
class DirGrant:
    """A host directory the guest sees at ``guest``; ``read_only`` refuses writes."""

    host: str
    guest: str
    read_only: bool


@dataclass(frozen=True)
class Sandbox:
    """The WASI grants of one function; the default grants nothing."""

    dirs: tuple[DirGrant, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def from_options(
        cls, options: FunctionOptions, environ: Mapping[str, str] | None = None
    ) -> Sandbox:
        """The grants in ``options``; ``NAME`` entries take their value from ``environ``.

        ``environ`` defaults to this process's environment, which the worker
        inherits from fsd. A ``NAME`` that is not set there is left out (as
        systemd's PassEnvironment= and ``docker run -e NAME`` do) with a warning.
        """
        environ = os.environ if environ is None else environ
        dirs = tuple(DirGrant(g["host"], g["guest"], g["mode"] == "ro") for g in options.allow_dirs)
        env: list[tuple[str, str]] = []
        for entry in options.allow_env:
            name, has_value, value = entry.partition("=")
            if has_value:
                env.append((name, value))
            elif name in environ:
                env.append((name, environ[name]))
            else:
                log.warning(
                    "granted environment variable is not set in fsd's environment; "
                    "the guest will not see it",
                    variable=name,
                )
        return cls(dirs, tuple(env))

    def apply(self, wasi: wasmtime.WasiConfig) -> None:
        """Preopen the granted directories and set the granted variables on ``wasi``.

        Raises SandboxError when a directory cannot be opened.
        """
        for grant in self.dirs:
            try:
                # fs_mutable=False: read-only directory and file permissions.
                wasi.preopen_dir(grant.host, grant.guest, not grant.read_only)
            except wasmtime.WasmtimeError:
                raise SandboxError(
                    f"cannot grant directory {grant.host} (--allow-dir): it is missing or "
                    f"not readable by the worker's user"
                ) from None
        if self.env:
            wasi.env = [list(pair) for pair in self.env]

    def describe(self) -> str:
        """One line for the worker's log: what is granted."""
        parts = [f"{d.host}->{d.guest}({'ro' if d.read_only else 'rw'})" for d in self.dirs]
        parts += [f"env {name}" for name, _ in self.env]
        return ", ".join(parts) or "nothing"


NO_GRANTS = Sandbox()
