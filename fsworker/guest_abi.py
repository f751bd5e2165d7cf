"""The Function Stream ABI (docs/abi.md): one long-lived instance, called per message or batch.

Per message: ``alloc(len)``, copy the input in, ``process(ptr, len)``. When the
module exports ``process_batch``, inputs go in chunks in the framing of
fsworker/batch_frame.py. A chunk that traps, times out, runs out of fuel or hits
the memory limit as a whole is re-run one record per call on a fresh instance,
so only the poisonous message fails.

With the host API (fsworker/host_api.py) the module's ``fs`` imports are bound
to a HostContext. Each call takes a state savepoint and rolls back to it when
the call fails, so a failed message leaves no state behind. When some inputs of a
``process_batch`` call fail and the call wrote state, its writes are undone and
its inputs re-run one per call, so only the failed inputs' writes are dropped.
A module that uses message metadata (``fs.msg_*``, ``fs.set_output_*``) is
called one message per call (``process_batch`` with one input when it has
one), with ``host.begin_message`` before each; see fsworker/guest.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import wasmtime

from fsworker import batch_frame
from fsworker.fastcall import I32, I64, invoker
from fsworker.guest import (
    ABI,
    ERROR,
    NO_LIMITS,
    BatchGuest,
    GuestError,
    GuestInitError,
    GuestLimits,
    Outcome,
    classify_failure,
    init_timeout_ms,
    limited_store,
    memory_limit_error,
    meters_fuel,
    trap_message,
)
from fsworker.host_api import MODULE as HOST_MODULE
from fsworker.host_api import HostApi
from fsworker.limits import (
    NO_DEADLINE,
    deadline_ticks,
    find_probe,
    ticker,
)
from fsworker.module_check import uses_message_metadata
from fsworker.sandbox import NO_GRANTS, Sandbox

if TYPE_CHECKING:
    from fsworker.host_context import HostContext, MessageMeta, OutputMeta

# _initialize gets at least this long (runtimes such as Go's do real work there).

_U32 = 0xFFFFFFFF


class _Failed(Exception):
    """A call failed; ``retry`` says a batch should be re-run one message per call."""

    def __init__(self, error: GuestError, retry: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry = retry


class AbiGuest(BatchGuest):
    """An instance exporting ``memory``, ``alloc``, ``process`` and maybe ``process_batch``."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        module: wasmtime.Module,
        limits: GuestLimits = NO_LIMITS,
        *,
        batch: bool = True,
        fast: bool | None = None,
        host: HostContext | None = None,
        sandbox: Sandbox = NO_GRANTS,
    ) -> None:
        self._engine = engine
        self._sandbox = sandbox
        self._module = module
        self._limits = limits
        self._use_batch = batch
        self._fast = fast
        self._metered = meters_fuel(engine)
        self._batch_bytes = batch_frame.batch_bytes_cap(limits.memory_limit)
        self._timeout = limits.timeout_ms
        self._ticks1 = deadline_ticks(limits.timeout_ms)
        self._fuel = limits.fuel
        self.fuel_used: int | None = 0 if limits.fuel is not None else None  # for metrics
        self._linker = wasmtime.Linker(engine)
        self._linker.define_wasi()
        self._host = host
        self._api: HostApi | None = None
        host_imports = sorted(
            f"{imp.module}.{imp.name}" for imp in module.imports if imp.module == HOST_MODULE
        )
        if host_imports:
            if host is None:
                more = ", ..." if len(host_imports) > 3 else ""
                raise GuestInitError(
                    f"module imports the host API ({', '.join(host_imports[:3])}{more}) "
                    f"but the worker gave it no host context"
                )
            self._api = HostApi(host)
            self._api.define(self._linker)
            if not self._api.raw:
                self._fast = False  # the fallback host functions need the public call path
        # One message per call, with host.begin_message before each (fsworker/guest.py).
        self.uses_message_metadata = self._api is not None and uses_message_metadata(module)
        self.last_output_meta: list[OutputMeta] | None = None
        self.instances = 0  # how many times the guest was instantiated (1 + rebuilds)
        self._instantiate()

    # --- instance lifecycle -------------------------------------------------

    def _instantiate(self) -> None:
        limits = self._limits
        init_ms = init_timeout_ms(limits)
        if self.before_call is not None and init_ms is not None:
            self.before_call(init_ms / 1000)  # a rebuild runs _initialize again
        store = limited_store(self._engine, limits, self._sandbox, metered=self._metered)
        api = self._api
        if api is not None:
            api.attach(None)  # not the old instance's memory (a start function may call in)
        ticker.enter()
        try:
            instance = self._linker.instantiate(store, self._module)
            exports = instance.exports(store)
            memory: wasmtime.Memory = exports["memory"]  # type: ignore[assignment]
            inv = invoker(store, memory, self._fast)
            if api is not None:
                api.attach(inv)  # before _initialize, which may call the host API
            init = exports.get("_initialize")
            if isinstance(init, wasmtime.Func):
                init(store)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            if api is not None:
                api.raise_pending()
            if isinstance(exc, wasmtime.Trap) and exc.trap_code is wasmtime.TrapCode.INTERRUPT:
                reason = f"_initialize did not finish within {init_timeout_ms(limits)} ms"
            else:
                reason = trap_message(exc)
            raise GuestInitError(f"module failed to initialise: {reason}") from None
        finally:
            ticker.leave()
        self._store = store
        self._inv = inv
        self._alloc = inv.bind(exports["alloc"], 1, I32)  # type: ignore[arg-type]
        self._process = inv.bind(exports["process"], 2, I64)  # type: ignore[arg-type]
        batch = exports.get("process_batch") if self._use_batch else None
        self._batch = inv.bind(batch, 2, I64) if isinstance(batch, wasmtime.Func) else None
        self._probe = find_probe(store, exports)
        self._probe_reset = self._probe.reset if self._probe is not None else None
        self._write = inv.write
        if limits.timeout_ms is None:
            store.set_epoch_deadline(NO_DEADLINE)  # once: calls need no deadline of their own
        self.instances += 1

    @property
    def call_mode(self) -> str:
        """``fast`` or ``public`` (fsworker/fastcall.py)."""
        return self._inv.mode

    @property
    def batched(self) -> bool:
        """Whether calls go through ``process_batch``."""
        return self._batch is not None

    # --- the Guest interface ------------------------------------------------

    def call_batch(
        self, inputs: Sequence[bytes], metas: Sequence[MessageMeta] | None = None
    ) -> list[Outcome]:
        """One outcome per input, in order; never raises GuestError.

        ``metas``: one MessageMeta per input, for a guest that uses message
        metadata (others ignore it); ``last_output_meta`` then holds what the
        guest set for each input's outputs (fsworker/guest.py).
        """
        if metas is not None and len(metas) != len(inputs):
            raise ValueError(f"{len(metas)} message metadata for {len(inputs)} inputs")
        ticker.enter()
        try:
            if self.uses_message_metadata:
                return self._each_with_metadata(inputs, metas)
            self.last_output_meta = None
            if self._batch is None:
                one = self._one
                return [one(data) for data in inputs]
            outcomes: list[Outcome] = []
            for start, end in batch_frame.chunks(inputs, self._batch_bytes):
                outcomes.extend(self._batched(inputs[start:end]))
            return outcomes
        finally:
            ticker.leave()

    def _each_with_metadata(
        self, inputs: Sequence[bytes], metas: Sequence[MessageMeta] | None
    ) -> list[Outcome]:
        """One call per input, each after ``host.begin_message``; fills last_output_meta."""
        from fsworker.host_context import MessageMeta, OutputMeta

        host = self._host
        assert host is not None
        outcomes: list[Outcome] = []
        output_meta: list[OutputMeta] = []
        for i, data in enumerate(inputs):
            host.begin_message(metas[i] if metas is not None else MessageMeta())
            outcome = self._batched([data])[0] if self._batch is not None else self._one(data)
            outcomes.append(outcome)
            output_meta.append(OutputMeta() if isinstance(outcome, GuestError) else host.output)
        self.last_output_meta = output_meta
        return outcomes

    # --- one message through process ----------------------------------------

    def _one(self, data: bytes) -> Outcome:
        try:
            packed = self._invoke(self._process, "process", data, 1)
        except _Failed as failed:
            return failed.error
        out_ptr, out_len = (packed >> 32) & _U32, packed & _U32
        if out_len == 0:
            return []
        try:
            return [self._inv.read(out_ptr, out_len)]
        except IndexError:
            if self._api is not None:
                self._api.rollback()
            return GuestError(
                ABI,
                f"process() returned output [{out_ptr}, +{out_len}) outside memory of "
                f"{self._inv.data_len()} bytes",
            )

    # --- batches through process_batch -----------------------------------------

    def _batched(self, chunk: Sequence[bytes]) -> list[Outcome]:
        """Run one process_batch call; on a whole-call failure, one record per call."""
        try:
            outcomes = self._batched_call(chunk)
        except _Failed as failed:
            if failed.retry and len(chunk) > 1:
                # Whole-call failure: isolate the message(s) that cause it.
                return [self._batched([data])[0] for data in chunk]
            return [failed.error] * len(chunk)
        api = self._api
        if api is not None and api.wrote:
            failed_inputs = [isinstance(outcome, GuestError) for outcome in outcomes]
            if any(failed_inputs):
                # Keep no state writes of a failed input: undo the call's writes and
                # re-run its inputs one per call (a failed single call undoes its own).
                api.rollback()
                if len(chunk) > 1 and not all(failed_inputs):
                    return [self._batched([data])[0] for data in chunk]
        return outcomes

    def _batched_call(self, chunk: Sequence[bytes]) -> list[Outcome]:
        """One process_batch call and its decoded output; raises _Failed."""
        packed = self._invoke(self._batch, "process_batch", batch_frame.encode(chunk), len(chunk))
        out_ptr, out_len = (packed >> 32) & _U32, packed & _U32
        try:
            out = self._inv.read(out_ptr, out_len)
        except IndexError:
            error = GuestError(
                ABI,
                f"process_batch() returned output [{out_ptr}, +{out_len}) outside memory of "
                f"{self._inv.data_len()} bytes",
            )
            return [error] * len(chunk)
        return batch_frame.decode(out, len(chunk))

    # --- the call itself --------------------------------------------------

    def _invoke(self, entry: object, name: str, data: bytes, count: int) -> int:
        """alloc + copy + call ``entry``; the packed i64 result, or raises _Failed.

        With the host API, the call's state writes are undone when it fails.
        """
        api = self._api
        if api is None:
            return self._invoke_once(entry, name, data, count)
        api.savepoint()
        try:
            return self._invoke_once(entry, name, data, count)
        except _Failed:
            api.rollback()
            raise

    def _invoke_once(self, entry: object, name: str, data: bytes, count: int) -> int:
        n = len(data)
        try:
            if self._timeout is not None:
                if self.before_call is not None:
                    self.before_call(self._timeout * count / 1000)
                self._inv.set_deadline(
                    self._ticks1 if count == 1 else deadline_ticks(self._timeout, count)
                )
            if self._fuel is not None:
                self._inv.set_fuel(self._fuel * count)
            if self._probe_reset is not None:
                self._probe_reset()
            ptr = self._alloc(n) & _U32
            if ptr == 0 and n:
                raise self._refused(f"alloc({n}) returned 0 (no memory for the input)", retry=True)
            try:
                self._write(ptr, data)
            except IndexError:
                inv = self._inv
                raise _Failed(
                    GuestError(
                        ABI,
                        f"alloc({n}) returned [{ptr}, +{n}) outside memory of "
                        f"{inv.data_len()} bytes",
                    ),
                    retry=False,
                ) from None
            packed: int = entry(ptr, n)  # type: ignore[operator]
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self._count_fuel(count)  # before the instance (and its store) is replaced
            if self._api is not None:
                self._api.raise_pending()  # a KeyboardInterrupt inside a host function
            error = classify_failure(exc, self._limits, self._probe, self._memory_size())
            # A trap can leave the instance's memory in any state: start a fresh one.
            self._instantiate()
            raise _Failed(error, retry=True) from None
        self._count_fuel(count)
        if packed < 0:
            raise self._refused(f"{name}() returned error code {packed}", retry=False)
        return packed

    def _count_fuel(self, count: int) -> None:
        """Add what the call used of the fuel it was given (only with a fuel limit)."""
        if self.fuel_used is None:
            return
        given = self._fuel * count  # type: ignore[operator]
        with contextlib.suppress(wasmtime.WasmtimeError):  # the engine meters fuel here
            self.fuel_used += given - self._store.get_fuel()

    def _refused(self, detail: str, retry: bool) -> _Failed:
        """A failure the guest reported; a memory-limit one if the limit explains it."""
        error = memory_limit_error(self._limits, self._probe, self._memory_size(), detail)
        if error is not None:
            # Stuck at its limit, the instance would fail again: start a fresh one.
            self._instantiate()
            return _Failed(error, retry=True)
        return _Failed(GuestError(ERROR, detail), retry=retry)

    def _memory_size(self) -> int | None:
        try:
            return self._inv.data_len()
        except (wasmtime.WasmtimeError, ValueError):  # pragma: no cover - defensive
            return None
