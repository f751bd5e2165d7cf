"""``fsctl run``: a function on your own messages, with no fsd and no Pulsar.

Parses the flags (the same data-path and sandbox flags ``create`` takes),
reads the input and prints what fsworker/local_run.py reports. Exit codes:
0 every input succeeded; 1 an input failed (or the module or the state store
could not be used); 2 a usage error (a missing file, a bad option, a bad
json-lines line, named by its line number).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from fscommon.exitcodes import CtlExit
from fscommon.function_options import FunctionOptions, OptionError
from fsctl import output as show
from fsctl.context import parse_pairs
from fsctl.create_flags import data_path_options, options_from_flags, sandbox_options
from fsworker.local_input import InputError, InputFormat, LocalInput, read_inputs

# fsworker.local_run (wasmtime, pulsar, the loop) is imported only when `run` runs, so
# registering this command costs every other fsctl command nothing.
if TYPE_CHECKING:
    from fsworker.local_run import LocalRunSpec, RunEvent, RunSummary


def _render_event(event: RunEvent) -> dict[str, Any]:
    """A run event as one JSON object (outputs in ``fsctl consume --json``'s shape)."""
    from fsworker.local_run import RunEventKind

    item: dict[str, Any] = {"type": str(event.kind), "input": event.input, "origin": event.origin}
    if event.kind is RunEventKind.OUTPUT:
        item.update(show.payload(event.data))
        item.update(key=event.key, properties=event.properties, event_time=event.event_time or None)
    elif event.kind is RunEventKind.FAILURE:
        item.update(error_kind=event.error_kind, error=event.error, attempts=event.attempts)
    else:
        item.update(level=event.level, message=event.message)
    return item


def _print_event(event: RunEvent, as_json: bool) -> None:
    """Outputs on stdout; failures and guest log lines on stderr (so outputs can be piped)."""
    from fsworker.local_run import RunEventKind

    if as_json:
        click.echo(json.dumps(_render_event(event), sort_keys=True))
    elif event.kind is RunEventKind.OUTPUT:
        click.echo(event.data.decode("utf-8", "backslashreplace"))
    elif event.kind is RunEventKind.FAILURE:
        tries = f"{event.attempts} attempt{'s' if event.attempts != 1 else ''}"
        click.echo(
            f"FAILED input {event.input} ({event.origin}) after {tries}: "
            f"{event.error_kind}: {event.error}",
            err=True,
        )
    else:
        click.echo(f"log input {event.input} {event.level}: {event.message}", err=True)
    show.flush()


def _print_state(state: list[tuple[bytes, bytes]], as_json: bool) -> None:
    """The state at the end: key = value lines, or one JSON object per entry."""
    for key, value in state:
        k, v = (b.decode("utf-8", "backslashreplace") for b in (key, value))
        if as_json:
            click.echo(json.dumps({"type": "state", "key": k, "value": v}, sort_keys=True))
        else:
            click.echo(f"state {k} = {v}", err=True)


def _inputs(source: str, fmt: InputFormat) -> Iterable[LocalInput]:
    """A file is read and checked up front (a bad line stops before anything runs);
    standard input is read as it comes."""
    try:
        inputs = read_inputs(source, fmt, sys.stdin.buffer)
        if source != "-":
            return list(inputs)
    except InputError as exc:
        _usage(str(exc))
    if sys.stdin.isatty():
        click.echo("fsctl: reading messages from standard input (Ctrl-D ends)", err=True)
    return inputs


def _usage(message: str) -> NoReturn:
    show.error(message)
    sys.exit(CtlExit.USAGE)


def _compiled_cache() -> Path | None:
    """Where compiled modules are kept between runs (None: compile every time)."""
    from fscommon.paths import cache_dir

    path = cache_dir() / "compiled"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


@click.command()
@click.option(
    "-a",
    "--archive",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The function's WebAssembly module (.wasm).",
)
@click.option("-n", "--name", help="Function name (fs-function). [default: the file's stem]")
@click.option(
    "--input",
    "source",
    default="-",
    show_default=True,
    help="File (or directory with --input-format raw) to read messages from; - is stdin.",
)
@click.option(
    "--input-format",
    type=click.Choice([f.value for f in InputFormat]),
    default=InputFormat.LINES.value,
    show_default=True,
    help="lines: one message per line; json-lines: {data, key, properties, event_time} "
    "per line; raw: one file per message.",
)
@click.option("--config", "config", multiple=True, help="key=value for the function (repeat).")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False),
    help="SQLite file for the function's state (kept between runs). [default: in memory]",
)
@click.option("--show-state", is_flag=True, help="Print the function's state at the end.")
@click.option("-v", "--verbose", is_flag=True, help="Also print the worker's own log lines.")
@data_path_options
@sandbox_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event on stdout.")
def run(
    archive: str,
    name: str | None,
    source: str,
    input_format: str,
    config: tuple[str, ...],
    state_path: str | None,
    show_state: bool,
    verbose: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Run a function on local messages: no fsd, no Pulsar, the worker's own code.

    Prints each output, each failed input with the error kind and text its dead
    letter would carry, and the guest's log lines. Exit 0 when every input
    succeeded, 1 when any failed, 2 on a usage error.
    """
    from fscommon import logs

    logs.configure("info" if verbose else "error", json=False)
    try:
        options = FunctionOptions.from_dict(options_from_flags(flags))
    except OptionError as exc:
        _usage(str(exc))
    spec = _spec(archive, name, config, state_path, options, show_state)
    inputs = _inputs(source, InputFormat(input_format))
    summary = _execute(spec, inputs, as_json)
    line = (
        f"{summary.inputs} input{'s' if summary.inputs != 1 else ''}: "
        f"{summary.succeeded} succeeded, {summary.failed} failed; {summary.outputs} output(s)"
    )
    if summary.state is not None:
        _print_state(summary.state, as_json)
    counts = {k: v for k, v in summary.__dict__.items() if k != "state"}
    if as_json:
        click.echo(json.dumps({"type": "summary", **counts}, sort_keys=True))
    else:
        click.echo(line, err=True)
    sys.exit(CtlExit.OK if summary.failed == 0 else CtlExit.FAILED)


def _spec(
    archive: str,
    name: str | None,
    config: tuple[str, ...],
    state_path: str | None,
    options: FunctionOptions,
    show_state: bool,
) -> LocalRunSpec:
    from fsworker.local_run import LocalRunSpec

    return LocalRunSpec(
        wasm_path=Path(archive),
        function=name or Path(archive).stem,
        options=options,
        config=parse_pairs(config, "--config"),
        state_path=Path(state_path) if state_path else None,
        cache_dir=_compiled_cache(),
        show_state=show_state,
    )


def _execute(spec: LocalRunSpec, inputs: Iterable[LocalInput], as_json: bool) -> RunSummary:
    from fsworker.local_run import LocalRunError, run_local

    try:
        return run_local(spec, inputs, lambda event: _print_event(event, as_json))
    except InputError as exc:  # a bad line on standard input, found as it was read
        _usage(str(exc))
    except LocalRunError as exc:
        show.error(str(exc))
        sys.exit(CtlExit.FAILED)
    except KeyboardInterrupt:
        sys.exit(130)
