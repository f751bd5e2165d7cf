"""'produce' and 'consume': a person's window onto Pulsar topics."""

from __future__ import annotations

import sys
import time

import click

from fscommon.exitcodes import CtlExit
from fsctl import output as show
from fsctl.context import Ctx, json_option, parse_pairs, pass_ctx


def _pulsar_url(ctx: Ctx, explicit: str | None) -> str:
    return explicit or ctx.call("info")["pulsar_url"]


@click.command()
@click.option("-n", "--name", "topic", required=True, help="Topic to produce to.")
@click.option("-c", "--content", required=True, help="Message payload (UTF-8 text).")
@click.option("-k", "--key", help="Message key.")
@click.option("-p", "--property", "props", multiple=True, help="key=value property (repeat).")
@click.option("--pulsar-url", envvar="FS_PULSAR_URL", help="Default: the one fsd uses.")
@json_option
@pass_ctx
def produce(
    ctx: Ctx,
    topic: str,
    content: str,
    key: str | None,
    props: tuple[str, ...],
    pulsar_url: str | None,
    as_json: bool,
) -> None:
    """Publish one message to a topic."""
    from fsctl import topics

    properties = parse_pairs(props, "--property")
    url = _pulsar_url(ctx, pulsar_url)
    try:
        message_id = topics.produce(url, topic, content.encode(), key, properties)
    except topics.TopicError as exc:
        show.error(str(exc))
        sys.exit(CtlExit.FAILED)
    if as_json:
        show.emit_json({"topic": topic, "message_id": message_id})
    else:
        click.echo("Event produced")


@click.command()
@click.option("-n", "--name", "topic", required=True, help="Topic to consume from.")
@click.option("--count", type=int, help="Exit after this many messages.")
@click.option("--timeout", "wait", type=float, help="Exit after this many seconds.")
@click.option("--from-earliest", is_flag=True, help="Start at the oldest retained message.")
@click.option("--pulsar-url", envvar="FS_PULSAR_URL", help="Default: the one fsd uses.")
@json_option
@pass_ctx
def consume(
    ctx: Ctx,
    topic: str,
    count: int | None,
    wait: float | None,
    from_earliest: bool,
    pulsar_url: str | None,
    as_json: bool,
) -> None:
    """Print each message of a topic as it arrives (Ctrl-C to stop)."""
    from fsctl import topics

    url = _pulsar_url(ctx, pulsar_url)
    deadline = time.monotonic() + wait if wait else None
    try:
        for message in topics.consume(url, topic, from_earliest, deadline, count):
            if as_json:
                import json

                click.echo(json.dumps(message, sort_keys=True))
            else:
                click.echo(message["data"])
            show.flush()
    except topics.TopicError as exc:
        show.error(str(exc))
        sys.exit(CtlExit.FAILED)
    except KeyboardInterrupt:
        pass
