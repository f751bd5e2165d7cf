"""About fsd itself: 'ping', 'info', 'members' (cluster), and 'keygen' (CURVE keys)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fscommon.exitcodes import CtlExit
from fsctl import output as show
from fsctl.context import Ctx, json_option, pass_ctx


@click.command()
@click.option(
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for the key files.",
)
@click.option("--name", help="File name stem (NAME.key, NAME.key_secret). [default: your user]")
@json_option
def keygen(out_dir: str, name: str | None, as_json: bool) -> None:
    """Create a CURVE key pair (Z85 text): NAME.key (public) and NAME.key_secret (0600).

    For fsd: point curve_secret_key at its .key_secret and give its .key to
    clients (--server-key). For a client: put its .key in fsd's
    curve_allowed_clients directory and use its .key_secret as --client-key.
    """
    import getpass
    import re

    from fscommon.curve_keys import KeyFileError, write_keypair

    name = name or getpass.getuser()
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", name):
        raise click.BadParameter(
            f"{name!r}: use 1-64 letters, digits, '_', '.' or '-'", param_hint="--name"
        )
    try:
        public, secret = write_keypair(Path(out_dir), name)
    except (KeyFileError, OSError) as exc:
        show.error(str(exc))
        sys.exit(CtlExit.FAILED)
    if as_json:
        # The public key itself too (safe to share), so a script need not read the file.
        show.emit_json(
            {
                "public_key_file": str(public),
                "secret_key_file": str(secret),
                "public_key": public.read_text().strip(),
            }
        )
        return
    click.echo(f"public key: {public}")
    click.echo(f"secret key: {secret} (mode 0600; keep it private)")


@click.command()
@json_option
@pass_ctx
def ping(ctx: Ctx, as_json: bool) -> None:
    """Check that fsd answers."""
    data = ctx.call("ping")
    if as_json:
        show.emit_json(data)
    else:
        click.echo(f"fsd {data['version']} (pid {data['pid']}) is up")


@click.command()
@json_option
@pass_ctx
def info(ctx: Ctx, as_json: bool) -> None:
    """Show fsd's version, endpoint and Pulsar URL."""
    data = ctx.call("info")
    if as_json:
        show.emit_json(data)
        return
    keys = ("version", "pid", "endpoint", "pulsar_url", "embedded_broker", "state_dir")
    for key in (*keys, "cluster", "member_id"):
        if key in keys or data.get(key) is not None:
            click.echo(f"{key}: {data.get(key)}")
    if show.broker_line(data.get("broker")):
        click.echo(show.broker_line(data.get("broker")))


@click.command()
@json_option
@pass_ctx
def members(ctx: Ctx, as_json: bool) -> None:
    """List the cluster's live members, its leader and each member's replicas."""
    data = ctx.call("members")
    if as_json:
        show.emit_json(data)
    else:
        show.print_members(data)
