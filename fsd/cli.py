"""fsd command line.

Exit codes: 0 clean stop; 1 could not start (config, broker, endpoint in use);
2 usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import structlog

from fscommon import logs
from fsd.broker import BrokerError
from fsd.config import (
    ConfigError,
    FsdConfig,
    default_config_path,
    read_config_file,
)
from fsd.control_access import ControlEndpointError
from fsd.settings import SETTINGS

log = structlog.get_logger("fsd")


def _load_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """--config/FS_CONFIG, else the system file if it exists; its keys become the defaults."""
    path = Path(value) if value else default_config_path()
    if not value and not path.exists():
        return
    try:
        ctx.default_map = read_config_file(path)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    ctx.meta["fsd.config_file"] = str(path)


def _settings_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One --option per setting, with FS_<NAME> as its environment variable."""
    for setting in reversed(SETTINGS):
        flag = "--" + setting.name.replace("_", "-")
        default_note = f" [default: {setting.default}]" if setting.default is not None else ""
        fn = click.option(
            flag,
            setting.name,
            type=setting.type,
            default=None,
            envvar=f"FS_{setting.name.upper()}",
            show_envvar=True,
            help=setting.help + default_note,
        )(fn)
    return fn


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="FS_CONFIG",
    callback=_load_config_file,
    is_eager=True,
    expose_value=False,
    help="TOML config file (keys: the long option names with '_'). "
    "[/etc/function-stream/fsd.toml if it exists]",
)
@_settings_options
@click.option("--log-json/--log-console", default=None, help="Default: JSON unless on a terminal.")
@click.option("--check-config", is_flag=True, help="Print the effective configuration and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --check-config: print JSON.")
@click.option(
    "--broker-only",
    is_flag=True,
    help="Run only the Pulsar standalone (pulsar_port, pulsar_web_port, pulsar_heap, "
    "state_dir), as fs-pulsar.service does.",
)
@click.pass_context
def main(
    ctx: click.Context,
    log_json: bool | None,
    check_config: bool,
    as_json: bool,
    broker_only: bool,
    **values: Any,
) -> None:
    """Function Stream supervisor daemon."""
    try:
        config = FsdConfig.from_values(values)
    except ConfigError as exc:
        click.echo(f"fsd: {exc}", err=True)
        sys.exit(1)
    if check_config:
        source = ctx.meta.get("fsd.config_file")
        if as_json:
            click.echo(config.to_json())
        else:
            click.echo(f"# config file: {source or 'none'}")
            click.echo(config.to_toml())
        return
    # In a cluster every line says which member wrote it.
    member = {"member": config.effective_member_id()} if config.cluster else {}
    logs.configure(config.log_level, json=log_json, **member)
    try:
        if broker_only:
            from fsd.broker_service import run_broker

            code = run_broker(config)
        else:
            from fsd.daemon import Daemon

            code = Daemon(config).run()
    except (BrokerError, ControlEndpointError) as exc:
        log.error(str(exc))
        click.echo(f"fsd: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)
