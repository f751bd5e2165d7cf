"""What every fsctl command shares: the connection options, --json, small argument readers."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fscommon.exitcodes import CtlExit
from fsctl import output as show
from fsctl.client import ClientCurve, CommandFailed, Unreachable, call


class Ctx:
    """Options shared by every command."""

    def __init__(
        self,
        endpoint: str,
        timeout: float,
        server_key: str | None = None,
        client_key: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.server_key = server_key
        self.client_key = client_key

    def curve(self) -> ClientCurve | None:
        """CURVE keys from --server-key/--client-key; a tcp:// endpoint requires them."""
        from fscommon.curve_keys import KeyFileError, read_public_key, read_secret_key

        if not self.server_key and not self.client_key:
            if self.endpoint.startswith("tcp://"):
                show.error(
                    f"{self.endpoint} is a TCP endpoint: fsd only serves it with CURVE keys. "
                    f"Give --server-key FILE (fsd's public key) and --client-key FILE (your "
                    f"secret key), or FSCTL_SERVER_KEY/FSCTL_CLIENT_KEY; see 'fsctl keygen'"
                )
                sys.exit(CtlExit.USAGE)
            return None
        if not self.server_key or not self.client_key:
            missing = "--server-key" if not self.server_key else "--client-key"
            show.error(f"CURVE needs both --server-key and --client-key; {missing} is missing")
            sys.exit(CtlExit.USAGE)
        try:
            server = read_public_key(self.server_key, "server public key file (--server-key)")
            public, secret = read_secret_key(
                self.client_key, "client secret key file (--client-key)"
            )
        except KeyFileError as exc:
            show.error(str(exc))
            sys.exit(CtlExit.USAGE)
        return ClientCurve(server, public, secret)

    def call(
        self, cmd: str, args: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Send a request to fsd; errors end the command with the right exit code."""
        curve = self.curve()
        try:
            return call(self.endpoint, cmd, args, timeout or self.timeout, curve)
        except Unreachable as exc:
            show.error(str(exc))
            sys.exit(CtlExit.UNREACHABLE)
        except CommandFailed as exc:
            show.error(exc.message)
            sys.exit(CtlExit.FAILED)


pass_ctx = click.make_pass_decorator(Ctx)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --json to a command."""

    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint=what)
        out[key] = value
    return out


def read_module(archive: str) -> bytes:
    try:
        return Path(archive).read_bytes()
    except OSError as exc:
        show.error(f"cannot read module '{archive}': {exc.strerror}")
        sys.exit(CtlExit.FAILED)
