"""Run a function on local messages with the worker's own code: no fsd, no Pulsar.

``run_local`` loads the module exactly as a replica does (the compiled-module
cache, module classification, the guest lanes, limits, WASI sandbox and host
API), then drives the real ``ProcessingLoop`` (fsworker/loop.py) over
in-process stand-ins for the broker (fsworker/local_broker.py). So decoding,
schemas, the guest call, error kinds, retries, dead letters and the state
commit are the platform's; what a local run reports as a failure is what the
dead-letter properties would carry (``fs-error-kind``, ``fs-error``,
``fs-attempts``).

Local differences, on purpose: retries run at once (``retry_delay_ms`` is not
waited), one message per batch (so every output, failure and guest log line
is tied to its input), outputs of a sink function are shown anyway, and state
lives in a SQLite file (``--state``) or in memory.
"""

from __future__ import annotations

import contextlib
import enum
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

from fscommon.function_options import FunctionOptions
from fsworker import module_cache
from fsworker.done_marks import MARK_PREFIX
from fsworker.engine import new_engine
from fsworker.guest import Guest, GuestInitError, GuestLimits, open_guest
from fsworker.host_context import LOG_LEVELS, HostContext
from fsworker.local_broker import (
    LocalConsumer,
    LocalIO,
    LocalMessage,
    LocalMessageId,
    LocalRunStuck,
    SilentLink,
)
from fsworker.local_input import LocalInput
from fsworker.loop import ProcessingLoop
from fsworker.module_check import InvalidModule, classify
from fsworker.sandbox import Sandbox
from fsworker.scratch import make_scratch_dir
from fsworker.state_store import SqliteStateStore, StateError, StateStore

IN_MEMORY = ":memory:"
# The most state entries show_state reads back.
STATE_SHOWN = 10_000


class RunEventKind(enum.StrEnum):
    """What a local run reports, in the order it happens."""

    OUTPUT = "output"  # an output record of an input
    FAILURE = "failure"  # an input failed for good (what its dead letter would say)
    LOG = "log"  # a guest log line (the host API's fs.log)


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened to input number ``input`` (1-based)."""

    kind: RunEventKind
    input: int
    origin: str  # where the input came from: "file:3", "file a.json"
    data: bytes = b""  # OUTPUT: the record
    key: str | None = None  # OUTPUT
    properties: dict[str, str] = field(default_factory=dict)  # OUTPUT
    event_time: int = 0  # OUTPUT; 0 = none
    error_kind: str = ""  # FAILURE: fs-error-kind
    error: str = ""  # FAILURE: fs-error
    attempts: int = 0  # FAILURE: fs-attempts
    level: str = ""  # LOG
    message: str = ""  # LOG


@dataclass
class RunSummary:
    """Counts at the end of a run."""

    inputs: int = 0
    succeeded: int = 0
    failed: int = 0
    outputs: int = 0
    # With LocalRunSpec.show_state: the function's state at the end, in key order.
    state: list[tuple[bytes, bytes]] | None = None


@dataclass(frozen=True)
class LocalRunSpec:
    """What to run and how: the same options and config a created function has."""

    wasm_path: Path
    function: str
    options: FunctionOptions
    config: dict[str, str] = field(default_factory=dict)
    state_path: Path | None = None  # None: a state store in memory
    cache_dir: Path | None = None  # compiled modules, as fsd keeps them
    show_state: bool = False  # read the state back at the end (RunSummary.state)


class LocalRunError(Exception):
    """The run cannot start or go on (bad module, state store); one line for people."""


class _LocalHost(HostContext):
    """The host API's context; guest log lines become events of the current input."""

    def __init__(self, config: dict[str, str], store: StateStore, run: _Run) -> None:
        super().__init__(config, store)
        self._run = run

    def log(self, level: int, message: str) -> None:
        self._run.guest_log(LOG_LEVELS.get(level, "info"), message)


class _Run:
    """The stand-ins' sink (fsworker/local_broker.py RunSink): turns calls into events."""

    def __init__(self, on_event: Callable[[RunEvent], None]) -> None:
        self._emit = on_event
        self.current: LocalMessage | None = None
        self.loop: ProcessingLoop | None = None
        self.summary = RunSummary()

    def _where(self) -> tuple[int, str]:
        msg = self.current
        return (msg.index, msg.item.origin) if msg is not None else (0, "")

    def received(self, msg: LocalMessage) -> None:
        self.current = msg

    def published(self, record: bytes, kwargs: dict[str, Any]) -> None:
        index, origin = self._where()
        self.summary.outputs += 1
        self._emit(
            RunEvent(
                RunEventKind.OUTPUT,
                index,
                origin,
                data=bytes(record),
                key=kwargs.get("partition_key") or None,
                properties=dict(kwargs.get("properties") or {}),
                event_time=kwargs.get("event_timestamp") or 0,
            )
        )

    def dead_lettered(self, data: bytes, properties: dict[str, str]) -> None:
        index, origin = self._where()
        self.summary.failed += 1
        self._emit(
            RunEvent(
                RunEventKind.FAILURE,
                index,
                origin,
                error_kind=properties.get("fs-error-kind", ""),
                error=properties.get("fs-error", ""),
                attempts=int(properties.get("fs-attempts", "1")),
            )
        )

    def drained(self) -> None:
        if self.loop is not None:
            self.loop.stop()

    def guest_log(self, level: str, message: str) -> None:
        index, origin = self._where()
        self._emit(RunEvent(RunEventKind.LOG, index, origin, level=level, message=message))


def run_local(
    spec: LocalRunSpec, inputs: Iterable[LocalInput], on_event: Callable[[RunEvent], None]
) -> RunSummary:
    """Run the function on every input, reporting each event as it happens.

    Raises LocalRunError when the module cannot be loaded or the state store
    cannot be opened or committed; an InputError from ``inputs`` passes through.
    """
    run = _Run(on_event)
    store = _open_store(spec.state_path)
    scratch = make_scratch_dir(spec.function, 0)
    consumer: LocalConsumer | None = None
    try:
        host = _LocalHost(spec.config, store, run)
        guest = _open_guest(spec, host, scratch)
        # A message handed back more often than this failed to commit, not in the guest.
        consumer = LocalConsumer(iter(inputs), run, spec.options.max_retries + 2)
        io = LocalIO(spec.function, consumer, run)
        loop = ProcessingLoop(
            guest,
            io,  # type: ignore[arg-type]
            SilentLink(),  # type: ignore[arg-type]
            spec.options,
            spec.function,
            0,
            max_batch=1,
            heartbeat_interval=3600.0,
            host=host,
        )
        run.loop = loop
        try:
            loop.run()
        except LocalRunStuck as exc:
            raise LocalRunError(str(exc)) from None
        if spec.show_state:
            run.summary.state = store.scan(b"", STATE_SHOWN)
    finally:
        if consumer is not None and spec.state_path is not None:
            _drop_done_marks(store, consumer)
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    summary = run.summary
    summary.inputs = consumer.taken
    summary.succeeded = summary.inputs - summary.failed
    return summary


def _open_store(path: Path | None) -> StateStore:
    try:
        return SqliteStateStore(path if path is not None else Path(IN_MEMORY))
    except StateError as exc:
        raise LocalRunError(str(exc)) from None


def _open_guest(spec: LocalRunSpec, host: HostContext, scratch: Path) -> Guest:
    """The module loaded and instantiated as fsworker/cli.py does for a replica."""
    options = spec.options
    fuel = options.fuel is not None
    engine = new_engine(fuel=fuel)
    limits = GuestLimits(
        timeout_ms=options.timeout_ms, memory_limit=options.memory_limit, fuel=options.fuel
    )
    try:
        module = module_cache.load(engine, spec.wasm_path, spec.cache_dir, fuel=fuel)
        kind = classify(module)
        return open_guest(
            engine,
            module,
            kind,
            scratch,
            limits,
            host=host,
            sandbox=Sandbox.from_options(options),
        )
    except (InvalidModule, GuestInitError, wasmtime.WasmtimeError) as exc:
        raise LocalRunError(f"{spec.wasm_path}: {exc}") from None
    except OSError as exc:
        raise LocalRunError(f"cannot read module {spec.wasm_path}: {exc.strerror}") from None


def _drop_done_marks(store: StateStore, consumer: LocalConsumer) -> None:
    """Remove this run's exactly-once marks from a --state file (no later run needs them)."""
    keys: dict[bytes, bytes | None] = {
        MARK_PREFIX + LocalMessageId(consumer.run_id, index).serialize(): None
        for index in range(1, consumer.taken + 1)
    }
    # On failure a few hidden keys stay behind; they never match another run.
    with contextlib.suppress(StateError):
        store.apply(keys, {})
