"""fsd command line.

Exit codes: 0 clean stop; 1 could not start (config, broker, endpoint in use);
2 usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import structlog

from fscommon import logs
from fsd.broker import BrokerError
from fsd.config import ConfigError, FsdConfig, defaults, read_config_file
from fsd.control_server import EndpointInUse

log = structlog.get_logger("fsd")


def _load_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        try:
            ctx.default_map = read_config_file(Path(value))
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="FS_CONFIG",
    callback=_load_config_file,
    is_eager=True,
    expose_value=False,
    help="TOML config file (keys: the long option names with '_').",
)
@click.option("--state-dir", envvar="FS_STATE_DIR", help="Registry, packages, logs, broker data.")
@click.option("--endpoint", envvar="FS_ENDPOINT", help="Control endpoint (ipc://PATH).")
@click.option(
    "--pulsar-url",
    envvar="FS_PULSAR_URL",
    help="Use this Pulsar cluster (pulsar://host:6650); without it fsd runs a standalone broker.",
)
@click.option("--pulsar-port", type=int, default=6650, show_default=True, envvar="FS_PULSAR_PORT")
@click.option(
    "--pulsar-web-port", type=int, default=8080, show_default=True, envvar="FS_PULSAR_WEB_PORT"
)
@click.option("--pulsar-heap", default="512m", show_default=True, help="Embedded broker -Xmx.")
@click.option(
    "--stop-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds a worker gets to drain after SIGTERM before SIGKILL.",
)
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-json/--log-console", default=None, help="Default: JSON unless on a terminal.")
@click.option("--check-config", is_flag=True, help="Print the effective configuration and exit.")
def main(**opts: Any) -> None:
    """Function Stream supervisor daemon."""
    base = defaults()
    log_json = opts.pop("log_json")
    check = opts.pop("check_config")
    config = FsdConfig(
        state_dir=Path(opts["state_dir"] or base["state_dir"]).expanduser(),
        endpoint=opts["endpoint"] or base["endpoint"],
        pulsar_url=opts["pulsar_url"] or None,
        pulsar_port=opts["pulsar_port"],
        pulsar_web_port=opts["pulsar_web_port"],
        pulsar_heap=opts["pulsar_heap"],
        stop_timeout=opts["stop_timeout"],
        log_level=opts["log_level"],
    )
    if check:
        for key, value in vars(config).items():
            click.echo(f"{key} = {value}")
        return
    logs.configure(config.log_level, json=log_json)
    from fsd.daemon import Daemon

    try:
        code = Daemon(config).run()
    except (BrokerError, EndpointInUse, ConfigError) as exc:
        log.error(str(exc))
        click.echo(f"fsd: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)
