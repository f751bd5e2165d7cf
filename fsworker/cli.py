"""fsworker entry point: run one replica of one function until told to stop.

Exit codes are the contract with fsd (fscommon.exitcodes.WorkerExit).
Normally started by fsd, never by hand: ``fsworker --spec '<json>'``.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import click
import structlog

from fscommon import logs
from fscommon.exitcodes import WorkerExit
from fscommon.function_options import FunctionOptions, Guarantee, OptionError
from fscommon.protocol import EventKind
from fscommon.worker_spec import SpecError, WorkerSpec
from fsworker import module_cache
from fsworker.attempts import AttemptLedger
from fsworker.engine import new_engine
from fsworker.faults import Fault, abort_on_payload, abort_prefix, fault_for, stop_receiving
from fsworker.fsd_link import FsdLink
from fsworker.guest import Guest, GuestInitError, GuestLimits, open_guest
from fsworker.host_context import HostContext
from fsworker.loop import ProcessingLoop
from fsworker.module_check import InvalidModule, ModuleKind, classify
from fsworker.parent_watch import die_with_parent, parent_alive, start_orphan_watchdog
from fsworker.pulsar_io import BrokerUnavailable, PulsarIO
from fsworker.sandbox import Sandbox
from fsworker.scratch import make_scratch_dir, pid_gone, remove_scratch_dirs
from fsworker.state_store import StateError, StateStore, open_state_store

log = structlog.get_logger("fsworker")

_SCRATCH_DIRS: list[Path] = []


class WorkerFailure(Exception):
    """Ends the worker with a given exit code and a one-line reason."""

    def __init__(self, code: WorkerExit, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def run(spec: WorkerSpec, link: FsdLink) -> WorkerExit:
    """Load the module, connect to Pulsar, say ready, process until stopped."""
    stop_requested = False
    loop: ProcessingLoop | None = None

    def request_stop(*_args: object) -> None:
        # Only record the request; the loop acts on it between batches.
        nonlocal stop_requested
        stop_requested = True
        if loop is not None:
            loop.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if not die_with_parent(spec.parent_pid):
        return WorkerExit.PARENT_GONE
    start_orphan_watchdog(spec.parent_pid, request_stop, grace=spec.stop_timeout)

    fault = fault_for(spec.function)
    if fault is Fault.EXIT_AT_START:
        raise WorkerFailure(WorkerExit.CRASH, "injected fault: exit at start")

    try:
        options = FunctionOptions.from_dict(spec.options)
    except OptionError as exc:
        raise WorkerFailure(WorkerExit.BAD_CONFIG, f"bad function options: {exc}") from None
    guest, kind, host = _open_guest(spec, options)
    try:
        io = PulsarIO(spec, options)
    except BrokerUnavailable as exc:
        raise WorkerFailure(WorkerExit.BROKER_UNAVAILABLE, str(exc)) from None

    prefix = abort_prefix(spec.function)
    if prefix is not None:
        abort_on_payload(guest, prefix)
    ledger = _open_ledger(spec, options)
    loop = ProcessingLoop(
        guest,
        io,
        link,
        options,
        spec.function,
        spec.replica,
        spec.max_batch,
        spec.heartbeat_interval,
        after_publish=_crash_after_publish if fault is Fault.CRASH_AFTER_PUBLISH else None,
        host=host,
        ledger=ledger,
    )
    if stop_requested:
        loop.stop()
    if fault is Fault.STOP_RECEIVING:
        stop_receiving(loop)
    if fault is Fault.NEVER_READY:
        while not stop_requested:
            time.sleep(0.1)
        return WorkerExit.OK
    link.send(EventKind.READY, module_kind=str(kind))
    log.info("ready", kind=str(kind), inputs=spec.inputs, output=spec.output)
    # What start-up built (modules, the client, the guest) lives as long as the worker:
    # out of the collector's sight, a full collection no longer walks its ~40,000
    # objects (about 10 ms of a stalled loop each time).
    gc.freeze()
    loop.run()

    # Graceful end: the last batch was acknowledged inside run(); close cleanly.
    try:
        io.close()
    except Exception as exc:
        log.warning("error while closing the Pulsar client", error=str(exc))
    log.info("stopped", **loop.counters.as_dict())
    return WorkerExit.OK if parent_alive(spec.parent_pid) else WorkerExit.PARENT_GONE


def _open_guest(
    spec: WorkerSpec, options: FunctionOptions
) -> tuple[Guest, ModuleKind, HostContext]:
    """The function's module, instantiated in its sandbox with its state store and limits."""
    fuel = options.fuel is not None
    engine = new_engine(fuel=fuel)
    limits = GuestLimits(
        timeout_ms=options.timeout_ms, memory_limit=options.memory_limit, fuel=options.fuel
    )
    try:
        cache = Path(spec.cache_dir) if spec.cache_dir else None
        module = module_cache.load(engine, Path(spec.wasm_path), cache, fuel=fuel)
        kind = classify(module)
        if kind != ModuleKind(spec.kind):
            raise InvalidModule(f"module is a {kind} module but was registered as {spec.kind}")
        # Left behind by workers of this replica that were killed along with fsd.
        remove_scratch_dirs(spec.function, spec.replica, pid_gone)
        scratch = make_scratch_dir(spec.function, spec.replica)
        _SCRATCH_DIRS.append(scratch)  # removed at exit: the stdio lane's stdin/stdout files
        host = HostContext(spec.config, _open_store(spec))
        sandbox = Sandbox.from_options(options)
        log.info("sandbox", granted=sandbox.describe())
        guest = open_guest(engine, module, kind, scratch, limits, host=host, sandbox=sandbox)
    except (InvalidModule, GuestInitError) as exc:
        raise WorkerFailure(WorkerExit.BAD_MODULE, str(exc)) from None
    except OSError as exc:
        raise WorkerFailure(
            WorkerExit.BAD_MODULE, f"cannot read module {spec.wasm_path}: {exc.strerror}"
        ) from None
    return guest, kind, host


def _open_ledger(spec: WorkerSpec, options: FunctionOptions) -> AttemptLedger | None:
    """The attempt ledger, if fsd gave one; at-most-once refuses to run without it."""
    if not spec.attempts_path:
        return None
    try:
        return AttemptLedger(
            Path(spec.attempts_path),
            spec.replica,
            keep_taken=options.guarantee == Guarantee.AT_MOST_ONCE,
        )
    except (OSError, sqlite3.Error) as exc:
        if options.guarantee == Guarantee.AT_MOST_ONCE:
            # Its taken ids are what keeps a redelivery from being processed twice.
            raise WorkerFailure(
                WorkerExit.CRASH,
                f"cannot open the attempt ledger {spec.attempts_path}: {exc}; "
                f"at-most-once does not run without it (restarting); check the state "
                f"directory",
            ) from None
        # Running without it only loses the counting of attempts that kill the worker.
        log.error(
            "cannot open the attempt ledger; a message that kills the worker will not be "
            "dead-lettered: check the state directory",
            path=spec.attempts_path,
            error=str(exc),
        )
        return None


def _open_store(spec: WorkerSpec) -> StateStore | None:
    """The function's state store: PostgreSQL (state_url), SQLite (state_path) or none."""
    if not spec.state_url and not spec.state_path:
        return None
    try:
        return open_state_store(spec.function, path=spec.state_path, url=spec.state_url)
    except StateError as exc:
        # Unreachable PostgreSQL is usually passing: restart with backoff.
        raise WorkerFailure(WorkerExit.CRASH, str(exc)) from None


def _crash_after_publish() -> None:
    """Fault hook: die after the outputs are confirmed but before the inputs are acked."""
    log.warning("injected fault: crashing between publish and acknowledge")
    os._exit(int(WorkerExit.CRASH))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--spec", "spec_json", required=True, help="The replica's spec, as JSON (from fsd).")
def main(spec_json: str) -> None:
    """Run one replica of a Function Stream function (started by fsd)."""
    try:
        spec = WorkerSpec.from_json(spec_json)
    except SpecError as exc:
        logs.configure()
        log.error("bad worker spec", error=str(exc))
        sys.exit(WorkerExit.BAD_CONFIG)
    member = {"member": spec.member} if spec.member else {}
    logs.configure(spec.log_level, function=spec.function, replica=spec.replica, **member)
    link = FsdLink(spec.events_endpoint, spec.function, spec.replica)
    code = WorkerExit.CRASH
    try:
        code = run(spec, link)
    except WorkerFailure as exc:
        log.error(exc.reason, exit_code=int(exc.code))
        link.send(EventKind.ERROR, exit_code=int(exc.code), message=exc.reason)
        code = exc.code
    except Exception as exc:
        log.exception("worker crashed")
        link.send(EventKind.ERROR, exit_code=int(WorkerExit.CRASH), message=repr(exc)[:500])
        code = WorkerExit.CRASH
    finally:
        link.close()
        for path in _SCRATCH_DIRS:
            shutil.rmtree(path, ignore_errors=True)
    # os._exit: the Pulsar C++ client's threads must not hold the exit up.
    sys.stderr.flush()
    os._exit(int(code))
