"""Lane 3: a WebAssembly component (wit/function-stream.wit), per message or per batch.

The component exports ``process: func(input: list<u8>) -> result<list<list<u8>>,
string>`` and, when built for world ``batch-processor``, ``process-batch:
func(batch: list<u8>) -> list<u8>`` (many inputs in lane 1's framing,
fsworker/batch_frame.py). It imports ``function-stream:function/host@1.0.0``
(state, config, log, message metadata), maybe ``function-stream:function/batch@1.0.0``
(``select-input``), and WASI preview 2 with nothing granted (no directories,
environment, arguments or network; stdout and stderr go to the replica's log).
This is how Python (componentize-py) and JavaScript (componentize-js)
functions run; see docs/abi.md, "Lane 3: components".

A component with ``process-batch`` gets every group of two or more inputs
through it (in chunks, as lane 1's ``process_batch``); one input, and every
re-run of one input, goes through ``process``. Per input it gives the same
outcome, state writes and output metadata either way:

* the time limit and fuel of a batch call are the per-message ones times its
  inputs; a batch call that traps, times out, runs out of fuel or hits the
  memory limit is undone (state writes included), the instance rebuilt, and
  its inputs re-run one per ``process`` call, so only the message that causes
  it fails;
* when some inputs of a batch fail and the call wrote state, its writes are
  undone and its inputs re-run one per call, so only the failed inputs' writes
  are dropped (an input's error text that says it ran out of memory, under a
  memory limit, counts as a whole-call failure);
* message metadata: before each call the host sets one MessageMeta and one
  OutputMeta per input and makes input 0 current; the guest calls
  ``batch.select-input(i)`` before reading or setting metadata of input i
  (fsworker/guest_component_host.py).

A call that fails undoes its state writes; after anything but an ``err``
result the instance is rebuilt (a trapped component instance cannot be
entered again). The memory limit is a store limit, so a ``memory.grow`` past
it fails inside the guest; but a component's core memories are not visible to
the host (the lane-1 probe does not apply), so a failure is reported as
``memory-limit`` when a memory limit is set and the failure's text says the
guest ran out of memory (Python ``MemoryError``, JavaScript ``out of memory``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import structlog
import wasmtime
from wasmtime import component as wc

from fsworker import batch_frame
from fsworker.guest import (
    ERROR,
    FUEL,
    MEMORY_LIMIT,
    NO_LIMITS,
    TIMEOUT,
    TRAP,
    BatchGuest,
    GuestError,
    GuestInitError,
    GuestLimits,
    Outcome,
    init_timeout_ms,
    limited_store,
    meters_fuel,
    trap_message,
)
from fsworker.guest_component_call import (
    FAST_AVAILABLE,
    FAST_MISSING,
    batch_caller,
    process_caller,
)
from fsworker.guest_component_host import HOST_INTERFACE, HostFunctions
from fsworker.host_context import HostContext, MessageMeta, OutputMeta
from fsworker.limits import NO_DEADLINE, UNLIMITED_FUEL, deadline_ticks, fmt_bytes, ticker
from fsworker.sandbox import NO_GRANTS, Sandbox

log = structlog.get_logger("fsworker.guest_component")

# Kept for callers that knew them here.
_HostFunctions = HostFunctions
__all__ = ["FAST_AVAILABLE", "HOST_INTERFACE", "ComponentGuest"]

EXPORT = "process"

# Longest error text kept from an ``err`` result.
MAX_TEXT_CHARS = 1000

# What a guest runtime says when an allocation failed (the store refused memory.grow).
_OUT_OF_MEMORY = re.compile(
    r"MemoryError|out of memory|memory allocation of \d+ bytes failed|cannot allocate memory",
    re.IGNORECASE,
)


class _WholeCall(Exception):
    """A batch call failed as a whole: re-run its inputs one per call."""


class ComponentGuest(BatchGuest):
    """A component exporting ``process`` (and maybe ``process-batch``); one long-lived instance."""

    # Metadata works in both call paths (the module docstring), so always take it.
    uses_message_metadata = True

    def __init__(
        self,
        engine: wasmtime.Engine,
        component: wc.Component,
        limits: GuestLimits = NO_LIMITS,
        *,
        fast: bool | None = None,
        batch: bool = True,
        host: HostContext | None = None,
        sandbox: Sandbox = NO_GRANTS,
    ) -> None:
        self._engine = engine
        self._component = component
        self._sandbox = sandbox
        self._limits = limits
        self._use_batch = batch
        self._metered = meters_fuel(engine)
        self._fast = FAST_AVAILABLE if fast is None else (fast and FAST_AVAILABLE)
        if fast and not FAST_AVAILABLE:  # pragma: no cover - other wasmtime
            log.warning("component fast call path unavailable", reason=FAST_MISSING)
        # Without a host context the state functions trap ("no state store").
        self._host = host if host is not None else HostContext({}, None)
        self._functions = HostFunctions(self._host)
        self._linker = wc.Linker(engine)
        self._linker.add_wasip2()
        self._functions.define(self._linker)
        self._ticks1 = deadline_ticks(limits.timeout_ms)
        self._batch_cap = batch_frame.batch_bytes_cap(limits.memory_limit)
        self.last_output_meta: list[OutputMeta] | None = None
        self.instances = 0  # how many times the guest was instantiated (1 + rebuilds)
        self._instantiate()

    @property
    def call_mode(self) -> str:
        """``fast`` or ``public`` (fsworker/guest_component_call.py)."""
        return "fast" if self._fast else "public"

    @property
    def batched(self) -> bool:
        """Whether groups of inputs go through ``process-batch``."""
        return self._batch is not None

    def _instantiate(self) -> None:
        limits = self._limits
        init_ms = init_timeout_ms(limits)
        if self.before_call is not None and init_ms is not None:
            self.before_call(init_ms / 1000)  # the component's start-up runs again
        # Of the host, only the function's grants (wasmtime's WASI p2 context also
        # denies every socket address by default); stdout too goes to the log.
        store = limited_store(
            self._engine, limits, self._sandbox, metered=self._metered, stdout=True
        )
        ticker.enter()
        try:
            instance = self._linker.instantiate(store, self._component)
        except wasmtime.WasmtimeError as exc:
            self._functions.raise_pending()
            reason = trap_message(exc)
            if "interrupt" in reason:
                reason = f"instantiation did not finish within {init_timeout_ms(limits)} ms"
            raise GuestInitError(f"component failed to initialise: {reason}") from None
        finally:
            ticker.leave()
        func = instance.get_func(store, EXPORT)
        if func is None:
            raise GuestInitError(f"component does not export '{EXPORT}' (see docs/abi.md)")
        batch = instance.get_func(store, batch_frame.LANE3_EXPORT) if self._use_batch else None
        if limits.timeout_ms is None:
            store.set_epoch_deadline(NO_DEADLINE)  # once: calls need no deadline of their own
        self._store = store
        self._process = process_caller(store, func, self._fast)
        self._batch = batch_caller(store, batch, self._fast) if batch is not None else None
        self.instances += 1

    # --- the Guest interface ------------------------------------------------

    def call_batch(
        self, inputs: Sequence[bytes], metas: Sequence[MessageMeta] | None = None
    ) -> list[Outcome]:
        """One outcome per input, in order; never raises GuestError.

        ``last_output_meta`` then holds one OutputMeta per input (an empty one
        for a failed input).
        """
        if metas is not None and len(metas) != len(inputs):
            raise ValueError(f"{len(metas)} message metadata for {len(inputs)} inputs")
        if metas is None:
            metas = [MessageMeta()] * len(inputs)
        outcomes: list[Outcome] = []
        output_meta: list[OutputMeta] = []
        ticker.enter()
        try:
            if self._batch is None or len(inputs) < 2:
                for data, meta in zip(inputs, metas, strict=True):
                    self._single(data, meta, outcomes, output_meta)
            else:
                for start, end in batch_frame.chunks(inputs, self._batch_cap):
                    self._batched(inputs[start:end], metas[start:end], outcomes, output_meta)
        finally:
            ticker.leave()
        self.last_output_meta = output_meta
        return outcomes

    # --- one input through ``process`` --------------------------------------

    def _single(
        self,
        data: bytes,
        meta: MessageMeta,
        outcomes: list[Outcome],
        output_meta: list[OutputMeta],
    ) -> None:
        functions = self._functions
        functions.begin((meta,))
        outcome = self._one(data)
        outcomes.append(outcome)
        failed = isinstance(outcome, GuestError)
        output_meta.append(OutputMeta() if failed else functions.outputs[0])

    def _one(self, data: bytes) -> Outcome:
        self._arm(1)
        savepoint = self._host.savepoint()
        try:
            result = self._process(data)
        except wasmtime.WasmtimeError as exc:
            self._functions.raise_pending()
            self._host.rollback_to(savepoint)
            error = self._classify(exc)
            # A trapped component instance cannot be entered again: start a fresh one.
            self._instantiate()
            return error
        if isinstance(result, str):
            self._host.rollback_to(savepoint)
            text = " ".join(result.split())[:MAX_TEXT_CHARS] or "(no text)"
            detail = f"process() returned an error: {text}"
            if self._limits.memory_limit is not None and _OUT_OF_MEMORY.search(result):
                # Stuck at its limit, the instance would fail again: start a fresh one.
                self._instantiate()
                return self._memory_error(detail)
            return GuestError(ERROR, detail)
        return result

    # --- many inputs through ``process-batch`` -----------------------------

    def _batched(
        self,
        chunk: Sequence[bytes],
        metas: Sequence[MessageMeta],
        outcomes: list[Outcome],
        output_meta: list[OutputMeta],
    ) -> None:
        """One ``process-batch`` call for ``chunk``, or one ``process`` call per input."""
        if len(chunk) == 1:
            self._single(chunk[0], metas[0], outcomes, output_meta)
            return
        functions = self._functions
        functions.begin(metas)
        host = self._host
        savepoint = host.savepoint()
        try:
            results = self._batch_call(chunk)
        except _WholeCall:
            host.rollback_to(savepoint)
            results = None
        if results is not None and host.savepoint() != savepoint:
            failed = [isinstance(outcome, GuestError) for outcome in results]
            if any(failed):
                # Keep no state writes of a failed input: undo the call's writes and
                # re-run its inputs one per call (a failed single call undoes its own).
                host.rollback_to(savepoint)
                if not all(failed):
                    results = None
        if results is None:
            for data, meta in zip(chunk, metas, strict=True):
                self._single(data, meta, outcomes, output_meta)
            return
        outputs = functions.outputs
        for outcome, output in zip(results, outputs, strict=True):
            outcomes.append(outcome)
            output_meta.append(OutputMeta() if isinstance(outcome, GuestError) else output)

    def _batch_call(self, chunk: Sequence[bytes]) -> list[Outcome]:
        """The outcomes of one ``process-batch`` call; raises _WholeCall."""
        count = len(chunk)
        self._arm(count)
        try:
            out = self._batch(batch_frame.encode(chunk))  # type: ignore[misc]
        except wasmtime.WasmtimeError as exc:
            self._functions.raise_pending()
            # A trapped component instance cannot be entered again: start a fresh one.
            self._instantiate()
            raise _WholeCall from exc
        results = batch_frame.decode(out, count, batch_frame.LANE3_EXPORT)
        if self._limits.memory_limit is not None and any(
            isinstance(r, GuestError) and _OUT_OF_MEMORY.search(str(r)) for r in results
        ):
            # Out of memory inside a batch may be the batch's fault, not one input's.
            self._instantiate()
            raise _WholeCall
        return results

    # --- limits and failures ------------------------------------------------

    def _arm(self, count: int) -> None:
        """The deadline and fuel of a call with ``count`` inputs."""
        limits = self._limits
        store = self._store
        if limits.timeout_ms is not None:
            if self.before_call is not None:
                self.before_call(limits.timeout_ms * count / 1000)
            store.set_epoch_deadline(
                self._ticks1 if count == 1 else deadline_ticks(limits.timeout_ms, count)
            )
        if self._metered:
            fuel = limits.fuel * count if limits.fuel is not None else UNLIMITED_FUEL
            store.set_fuel(fuel)

    def _classify(self, exc: wasmtime.WasmtimeError) -> GuestError:
        limits = self._limits
        message = trap_message(exc)
        if message.startswith("interrupt"):
            return GuestError(
                TIMEOUT, f"component exceeded its time limit of {limits.timeout_ms} ms"
            )
        if message.startswith("all fuel consumed"):
            return GuestError(FUEL, f"component ran out of fuel (limit {limits.fuel} per message)")
        detail = f"wasm trap: {message}"
        if limits.memory_limit is not None and _OUT_OF_MEMORY.search(str(exc)):
            return self._memory_error(detail)
        return GuestError(TRAP, detail)

    def _memory_error(self, then: str) -> GuestError:
        limit = fmt_bytes(self._limits.memory_limit or 0)
        return GuestError(
            MEMORY_LIMIT, f"component ran out of memory under its limit of {limit} (then {then})"
        )
