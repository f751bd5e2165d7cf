"""fsctl: create, inspect and delete functions; produce to and consume from topics.

Exit codes: 0 ok; 1 the command failed; 2 usage error; 3 fsd unreachable.
"""

from __future__ import annotations

import click

from fscommon.paths import default_control_endpoint
from fsctl import (
    admin_commands,
    dlq_command,
    function_commands,
    run_command,
    state_command,
    topic_commands,
    watch_commands,
)
from fsctl.context import Ctx


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--endpoint",
    envvar="FS_ENDPOINT",
    default=default_control_endpoint,
    show_default="ipc://<runtime dir>/fsd.sock",
    help="fsd's control endpoint.",
)
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for fsd."
)
@click.option(
    "--server-key",
    envvar="FSCTL_SERVER_KEY",
    show_envvar=True,
    help="fsd's CURVE public key file (tcp:// endpoints).",
)
@click.option(
    "--client-key",
    envvar="FSCTL_CLIENT_KEY",
    show_envvar=True,
    help="Your CURVE secret key file (tcp:// endpoints).",
)
@click.pass_context
def main(
    ctx: click.Context,
    endpoint: str,
    timeout: float,
    server_key: str | None,
    client_key: str | None,
) -> None:
    """Control Function Stream: run WebAssembly functions on Pulsar topics."""
    ctx.obj = Ctx(endpoint, timeout, server_key, client_key)


for command in (
    function_commands.create, function_commands.delete, function_commands.list_,
    function_commands.status, function_commands.stop, function_commands.start,
    function_commands.scale, function_commands.restart, function_commands.update,
    state_command.state, watch_commands.events, watch_commands.logs,
    admin_commands.keygen, admin_commands.ping, admin_commands.info, admin_commands.members,
    topic_commands.produce, topic_commands.consume, run_command.run, dlq_command.dlq,
):  # fmt: skip
    main.add_command(command)
