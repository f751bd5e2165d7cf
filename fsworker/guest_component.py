"""Lane 3: a WebAssembly component (wit/function-stream.wit), one call per message.

The component exports ``process: func(input: list<u8>) -> result<list<list<u8>>,
string>`` and imports ``function-stream:function/host@1.0.0`` (state, config,
log, message metadata) and WASI preview 2 with nothing granted (no
directories, environment, arguments or network; stdout and stderr go to the
replica's log). This is how Python (componentize-py) and JavaScript
(componentize-js) functions run; see docs/abi.md, "Lane 3: components".

Every message is one call (there is no batch entry point), so the host always
calls ``host.begin_message`` before it and ``last_output_meta`` always holds
what the guest set. A call that fails (an ``err`` result, a trap, a timeout,
fuel, the memory limit) undoes its state writes; after anything but an ``err``
result the instance is rebuilt (a trapped component instance cannot be
entered again).

Limits: the deadline (epoch interruption) and fuel work as in the other lanes.
The memory limit is a store limit, so a ``memory.grow`` past it fails inside
the guest; but a component's core memories are not visible to the host (the
lane-1 probe does not apply), so a failure is reported as ``memory-limit``
when a memory limit is set and the failure's text says the guest ran out of
memory (Python ``MemoryError``, JavaScript ``out of memory``, ...).

The call itself: wasmtime-py's public ``component.Func.__call__`` converts a
``list<u8>`` one byte at a time in Python (about 100 us for a 50-byte
message). ``_FastProcess`` instead lays the bytes out as ``wasmtime_component_val_t``
elements with two slice assignments and one memmove, and reads the results
back the same way. It uses wasmtime-py 50.0.1 private names:
``wasmtime._ffi`` (the C functions ``wasmtime_component_func_call``,
``wasmtime_component_vallist_new_uninit``, ``wasmtime_component_val_delete``
and the types ``wasmtime_component_val_t``, ``WASMTIME_COMPONENT_*``),
``Store._context()``, ``component.Func._func``, ``WasmtimeError._from_ptr``
and ``component._enter.maybe_raise_last_exn``. If any is missing the public
call is used (same results, slower); tests/unit/test_component_guest.py
checks that both agree.
"""

from __future__ import annotations

import ctypes
import re
import struct
from collections.abc import Callable, Sequence
from typing import Any

import structlog
import wasmtime
from wasmtime import component as wc

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
from fsworker.host_api import HostCallError
from fsworker.host_context import HostContext, MessageMeta, OutputMeta
from fsworker.limits import NO_DEADLINE, UNLIMITED_FUEL, deadline_ticks, fmt_bytes, ticker
from fsworker.sandbox import NO_GRANTS, Sandbox
from fsworker.state_store import StateError

log = structlog.get_logger("fsworker.guest_component")

# The interface the component imports and the export it must have (wit/function-stream.wit).
HOST_INTERFACE = "function-stream:function/host@1.0.0"
HOST_PACKAGE = "function-stream:function/host@"
EXPORT = "process"
WASI_PREFIX = "wasi:"

# Instantiation gets at least this long (a language runtime may do work in its start).

# Longest error text kept from an ``err`` result or a guest log line.
MAX_TEXT_CHARS = 1000
MAX_LOG_CHARS = 4096

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1

# What a guest runtime says when an allocation failed (the store refused memory.grow).
_OUT_OF_MEMORY = re.compile(
    r"MemoryError|out of memory|memory allocation of \d+ bytes failed|cannot allocate memory",
    re.IGNORECASE,
)


# --- the host side of the ``host`` interface ------------------------------------------------


class _HostFunctions:
    """The ``host`` imports, bound to one HostContext (component-model values in and out).

    A bad argument, a StateError or any other exception becomes a trap whose
    message names the import (``host.state-add: ...``), so the call fails with
    kind ``trap`` and the instance is rebuilt.
    """

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self._pending: BaseException | None = None

    def define(self, linker: wc.Linker) -> None:
        """Define every function of the interface on ``linker``."""
        funcs: dict[str, Callable[..., Any]] = {
            "state-get": lambda key: self.host.state_get(_key(key)),
            "state-put": lambda key, value: self.host.state_put(_key(key), bytes(value)),
            "state-delete": lambda key: self.host.state_delete(_key(key)),
            "state-add": self._state_add,
            "config-get": self._config_get,
            "log": self._log,
            "msg-key": lambda: self.host.message.key,
            "msg-property": lambda name: self.host.message.properties.get(name),
            "msg-event-time": lambda: self.host.message.event_time or 0,
            "set-output-key": self._set_output_key,
            "set-output-property": self._set_output_property,
            "set-output-event-time": self._set_output_event_time,
        }
        with linker.root() as root, root.add_instance(HOST_INTERFACE) as instance:
            for name, fn in funcs.items():
                instance.add_func(name, self._guarded(name, fn))

    def raise_pending(self) -> None:
        """Re-raise a KeyboardInterrupt/SystemExit that arrived inside a host function."""
        pending, self._pending = self._pending, None
        if pending is not None:
            raise pending

    def _guarded(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(_store: object, *args: Any) -> Any:
            try:
                return fn(*args)
            except (HostCallError, StateError) as exc:
                detail = str(exc)
            except Exception as exc:
                log.error("host function failed", function=f"host.{name}", exc_info=exc)
                detail = f"internal error: {type(exc).__name__}: {exc}"
            except BaseException as exc:  # KeyboardInterrupt: trap now, re-raise after the call
                self._pending = exc
                detail = f"interrupted ({type(exc).__name__})"
            detail = " ".join(detail.split())[:500]
            raise wasmtime.WasmtimeError(f"host.{name}: {detail}")

        return call

    def _state_add(self, key: str, delta: int) -> int:
        value = self.host.state_add(_key(key), delta)
        if not _I64_MIN <= value <= _I64_MAX:
            raise HostCallError(f"the new value {value} of {key[:40]!r} does not fit in an s64")
        return value

    def _config_get(self, key: str) -> str | None:
        value = self.host.config_get(key.encode())
        return None if value is None else value.decode("utf-8", "replace")

    def _log(self, level: str, message: str) -> None:
        text = message.rstrip()
        if len(text) > MAX_LOG_CHARS:
            text = f"{text[:MAX_LOG_CHARS]}... ({len(text) - MAX_LOG_CHARS} more characters)"
        self.host.log(_LEVELS.get(level, 1), text)

    def _set_output_key(self, key: str) -> None:
        self.host.output.key = key

    def _set_output_property(self, name: str, value: str) -> None:
        self.host.output.properties[name] = value

    def _set_output_event_time(self, ms: int) -> None:
        if ms < 0:
            raise HostCallError(f"event time {ms} is negative (ms since the epoch; 0 = none)")
        self.host.output.event_time = ms


def _key(key: str) -> bytes:
    return key.encode("utf-8")


# --- calling ``process`` ------------------------------------------------------------------

_missing: str | None = None
try:
    from wasmtime import _ffi
    from wasmtime.component._enter import maybe_raise_last_exn

    _Val = _ffi.wasmtime_component_val_t
    _VAL_SIZE = ctypes.sizeof(_Val)
    _PAYLOAD = _Val.of.offset
    _KIND_U8 = _ffi.WASMTIME_COMPONENT_U8.value
    _KIND_LIST = _ffi.WASMTIME_COMPONENT_LIST.value
    _KIND_STRING = _ffi.WASMTIME_COMPONENT_STRING.value
    _KIND_RESULT = _ffi.WASMTIME_COMPONENT_RESULT.value
    _func_call = _ffi.wasmtime_component_func_call
    _list_new = _ffi.wasmtime_component_vallist_new_uninit
    _val_delete = _ffi.wasmtime_component_val_delete
    _from_error = wasmtime.WasmtimeError._from_ptr
    _VallistT = _ffi.wasmtime_component_vallist_t
    if _VAL_SIZE != 32 or _PAYLOAD != 8 or _Val.kind.offset != 0:
        raise AttributeError("wasmtime_component_val_t changed layout")
    if not callable(getattr(wasmtime.Store, "_context", None)):
        raise AttributeError("wasmtime.Store._context")
except (ImportError, AttributeError, TypeError) as exc:  # pragma: no cover - other wasmtime
    _missing = f"{type(exc).__name__}: {exc}"

FAST_AVAILABLE = _missing is None
# A list element: kind byte at 0, payload at 8 (u64 size, then pointer, for a list or string).
_SIZE_PTR = struct.Struct("<QQ")


class _FastProcess:
    """``process(input)`` without per-byte Python conversion; returns records or error text."""

    def __init__(self, store: wasmtime.Store, func: wc.Func) -> None:
        self._func_ref = ctypes.byref(func._func)
        self._store = store
        self._param = _Val()
        self._result = _Val()
        self._param_ref = ctypes.byref(self._param)
        self._result_ref = ctypes.byref(self._result)
        self._u8_kinds: bytes = b""

    def __call__(self, data: bytes) -> list[bytes] | str:
        n = len(data)
        raw = _VallistT()
        _list_new(ctypes.byref(raw), n)
        if n:
            # Each element is a 32-byte val: kind U8 at byte 0, the byte at 8.
            layout = bytearray(n * _VAL_SIZE)
            kinds = self._u8_kinds
            if len(kinds) < n:
                kinds = self._u8_kinds = bytes([_KIND_U8]) * max(n, 2 * len(kinds))
            layout[0::_VAL_SIZE] = kinds[:n]
            layout[_PAYLOAD::_VAL_SIZE] = data
            ctypes.memmove(raw.data, bytes(layout), n * _VAL_SIZE)
        param = self._param
        param.kind = _KIND_LIST
        param.of.list = raw
        try:
            err = _func_call(
                self._func_ref, self._store._context(), self._param_ref, 1, self._result_ref, 1
            )
        finally:
            _val_delete(self._param_ref)
            # wasmtime drops what a val holds before writing one: leave both empty (a bool).
            ctypes.memset(self._param_ref, 0, _VAL_SIZE)
        if err:
            error = _from_error(err)
            maybe_raise_last_exn()
            raise error
        try:
            return _lift_result(self._result)
        finally:
            _val_delete(self._result_ref)
            ctypes.memset(self._result_ref, 0, _VAL_SIZE)


def _lift_result(result: Any) -> list[bytes] | str:
    """Read ``result<list<list<u8>>, string>`` from a wasmtime_component_val_t."""
    if result.kind != _KIND_RESULT:
        raise TypeError(f"process returned a value of kind {result.kind}, expected a result")
    payload = result.of.result.val
    if not result.of.result.is_ok:
        if not payload:
            return ""
        text = payload.contents.of.string
        return ctypes.string_at(text.data, text.size).decode("utf-8", "replace")
    if not payload:
        return []
    outer = payload.contents.of.list
    count = outer.size
    if not count:
        return []
    elements = ctypes.string_at(outer.data, count * _VAL_SIZE)
    records = []
    for i in range(count):
        off = i * _VAL_SIZE
        size, ptr = _SIZE_PTR.unpack_from(elements, off + _PAYLOAD)
        records.append(
            ctypes.string_at(ptr, size * _VAL_SIZE)[_PAYLOAD::_VAL_SIZE] if size else b""
        )
    return records


class _PublicProcess:
    """``process(input)`` through wasmtime-py's public API (the fallback)."""

    def __init__(self, store: wasmtime.Store, func: wc.Func) -> None:
        self._store = store
        self._func = func

    def __call__(self, data: bytes) -> list[bytes] | str:
        result = self._func(self._store, bytes(data))
        if isinstance(result, str):
            return result
        return [bytes(record) for record in result]


# --- the guest ------------------------------------------------------------------------------


class ComponentGuest(BatchGuest):
    """A component exporting ``process``; one long-lived instance, one call per message."""

    # Every call is one message, so metadata is always available (fsworker/guest.py).
    uses_message_metadata = True

    def __init__(
        self,
        engine: wasmtime.Engine,
        component: wc.Component,
        limits: GuestLimits = NO_LIMITS,
        *,
        fast: bool | None = None,
        host: HostContext | None = None,
        sandbox: Sandbox = NO_GRANTS,
    ) -> None:
        self._engine = engine
        self._component = component
        self._sandbox = sandbox
        self._limits = limits
        self._metered = meters_fuel(engine)
        self._fast = FAST_AVAILABLE if fast is None else (fast and FAST_AVAILABLE)
        if fast and not FAST_AVAILABLE:  # pragma: no cover - other wasmtime
            log.warning("component fast call path unavailable", reason=_missing)
        # Without a host context the state functions trap ("no state store").
        self._host = host if host is not None else HostContext({}, None)
        self._functions = _HostFunctions(self._host)
        self._linker = wc.Linker(engine)
        self._linker.add_wasip2()
        self._functions.define(self._linker)
        self._ticks1 = deadline_ticks(limits.timeout_ms)
        self.last_output_meta: list[OutputMeta] | None = None
        self.instances = 0  # how many times the guest was instantiated (1 + rebuilds)
        self._instantiate()

    @property
    def call_mode(self) -> str:
        """``fast`` or ``public`` (see the module docstring)."""
        return "fast" if self._fast else "public"

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
        if limits.timeout_ms is None:
            store.set_epoch_deadline(NO_DEADLINE)  # once: calls need no deadline of their own
        self._store = store
        self._process = _FastProcess(store, func) if self._fast else _PublicProcess(store, func)
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
        host = self._host
        outcomes: list[Outcome] = []
        output_meta: list[OutputMeta] = []
        ticker.enter()
        try:
            for i, data in enumerate(inputs):
                host.begin_message(metas[i] if metas is not None else MessageMeta())
                outcome = self._one(data)
                outcomes.append(outcome)
                output_meta.append(OutputMeta() if isinstance(outcome, GuestError) else host.output)
        finally:
            ticker.leave()
        self.last_output_meta = output_meta
        return outcomes

    def _one(self, data: bytes) -> Outcome:
        limits = self._limits
        store = self._store
        if limits.timeout_ms is not None:
            if self.before_call is not None:
                self.before_call(limits.timeout_ms / 1000)
            store.set_epoch_deadline(self._ticks1)
        if self._metered:
            store.set_fuel(limits.fuel if limits.fuel is not None else UNLIMITED_FUEL)
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
            if limits.memory_limit is not None and _OUT_OF_MEMORY.search(result):
                # Stuck at its limit, the instance would fail again: start a fresh one.
                self._instantiate()
                return self._memory_error(detail)
            return GuestError(ERROR, detail)
        return result

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
