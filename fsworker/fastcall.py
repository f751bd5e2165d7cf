"""Checked-once calls into a guest instance: the fast path of DESIGN.md.

wasmtime-py's public ``Func.__call__`` looks the function type up, converts
every argument to a ``wasmtime_val_t`` and back on every call (tens of us).
Here the type is checked once, when a function is bound, and each call is one
ctypes call of wasmtime's C ``wasmtime_func_call_unchecked`` on a preallocated
``ValRaw`` array; guest memory is read and written with ``ctypes.memmove`` /
``ctypes.string_at`` at the memory's base address, which does not move because
the engine sets ``memory_may_move = False`` (fsworker/engine.py).

This is the only module that uses wasmtime-py private names. All of them (for
wasmtime-py 50.0.1, pinned in setup.cfg):

* ``wasmtime._ffi.dll``: the loaded libwasmtime; the C functions
  ``wasmtime_func_call_unchecked``, ``wasmtime_context_set_epoch_deadline`` and
  ``wasmtime_context_set_fuel`` are taken from it as our own ctypes function
  objects (no argtypes: prebuilt ctypes arguments, no per-call conversion);
* ``wasmtime._bindings.wasmtime_val_raw_t``, ``wasm_trap_t``,
  ``wasmtime_error_t``: the C types;
* ``Store._context()`` (the ``wasmtime_context_t *``) and ``Func._func`` (the
  ``wasmtime_func_t`` struct);
* ``Trap._from_ptr`` and ``WasmtimeError._from_ptr``, so a failed call raises
  exactly what the public API raises (``Trap`` with its ``trap_code``,
  ``ExitTrap`` for ``proc_exit``, ``WasmtimeError``).

If any of them is missing, ``invoker()`` logs once and returns the public-API
implementation of the same interface (about 10x slower, same results).
tests/unit/test_fastcall.py fails loudly when names or behaviour change: after
a wasmtime upgrade, re-check this module against the new wasmtime-py.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Protocol

import structlog
import wasmtime

log = structlog.get_logger("fsworker.fastcall")

I32 = "i32"
I64 = "i64"
_VALTYPES = {I32: wasmtime.ValType.i32(), I64: wasmtime.ValType.i64()}


class Invoker(Protocol):
    """Calls into one instance (one store, one exported memory)."""

    mode: str  # "fast" or "public"

    def bind(self, func: wasmtime.Func, params: int, result: str) -> Callable[..., int]:
        """A callable for ``func`` taking ``params`` i32 arguments and returning its one
        ``result`` ("i32" or "i64", signed); the type is checked here, once."""
        ...

    def set_deadline(self, ticks: int) -> None:
        """Trap calls that run past ``ticks`` epoch ticks from now."""
        ...

    def set_fuel(self, fuel: int) -> None:
        """Give the store this much fuel (engine must have ``consume_fuel``)."""
        ...

    def write(self, ptr: int, data: bytes) -> None:
        """Copy ``data`` to guest memory at ``ptr``; IndexError if out of bounds."""
        ...

    def read(self, ptr: int, length: int) -> bytes:
        """Copy ``length`` bytes at ``ptr`` out of guest memory; IndexError if out of bounds."""
        ...

    def data_len(self) -> int:
        """The guest memory's size in bytes, now."""
        ...


def _check_type(store: wasmtime.Store, func: wasmtime.Func, params: int, result: str) -> None:
    ty = func.type(store)
    want_params = [_VALTYPES[I32]] * params
    want_results = [_VALTYPES[result]]
    if list(ty.params) != want_params or list(ty.results) != want_results:
        got = f"({', '.join(map(str, ty.params))}) -> ({', '.join(map(str, ty.results))})"
        raise TypeError(f"function has type {got}, expected ({params} x i32) -> {result}")


class PublicInvoker:
    """The same interface over wasmtime-py's public API (the fallback, and the reference)."""

    mode = "public"

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self._store = store
        self._memory = memory

    def bind(self, func: wasmtime.Func, params: int, result: str) -> Callable[..., int]:
        _check_type(self._store, func, params, result)
        store = self._store

        def call(*args: int) -> int:
            return func(store, *args)  # type: ignore[no-any-return]

        return call

    def set_deadline(self, ticks: int) -> None:
        self._store.set_epoch_deadline(ticks)

    def set_fuel(self, fuel: int) -> None:
        self._store.set_fuel(fuel)

    def write(self, ptr: int, data: bytes) -> None:
        if ptr < 0 or ptr + len(data) > self._memory.data_len(self._store):
            raise IndexError(f"[{ptr}, +{len(data)}) is outside guest memory")
        if data:
            self._memory.write(self._store, data, ptr)

    def read(self, ptr: int, length: int) -> bytes:
        if ptr < 0 or length < 0 or ptr + length > self._memory.data_len(self._store):
            raise IndexError(f"[{ptr}, +{length}) is outside guest memory")
        return bytes(self._memory.read(self._store, ptr, ptr + length))

    def data_len(self) -> int:
        return self._memory.data_len(self._store)


# --- the private names, resolved once -------------------------------------

_missing: str | None = None
try:
    from wasmtime import _bindings, _ffi

    _ValRaw = _bindings.wasmtime_val_raw_t
    _TrapPtr = ctypes.POINTER(_bindings.wasm_trap_t)
    _ErrorPtr = ctypes.POINTER(_bindings.wasmtime_error_t)

    def _c(name: str, restype: object) -> Callable[..., object]:
        # dll[name] makes our own function object (dll.name would be wasmtime-py's
        # shared one). No argtypes: every argument is passed as a prebuilt ctypes
        # object, which is the cheapest call ctypes has (about 0.4 us here).
        func = _ffi.dll[name]
        func.restype = restype
        return func  # type: ignore[no-any-return]

    # wasmtime_error_t *wasmtime_func_call_unchecked(wasmtime_context_t *,
    #     const wasmtime_func_t *, wasmtime_val_raw_t *args_and_results, size_t, wasm_trap_t **)
    _call_unchecked = _c("wasmtime_func_call_unchecked", ctypes.c_void_p)
    # void wasmtime_context_set_epoch_deadline(wasmtime_context_t *, uint64_t ticks)
    _set_deadline = _c("wasmtime_context_set_epoch_deadline", None)
    # wasmtime_error_t *wasmtime_context_set_fuel(wasmtime_context_t *, uint64_t fuel)
    _set_fuel = _c("wasmtime_context_set_fuel", ctypes.c_void_p)
    _trap_from_ptr = wasmtime.Trap._from_ptr
    _error_from_ptr = wasmtime.WasmtimeError._from_ptr
    if not hasattr(wasmtime.Store, "_context"):
        raise AttributeError("wasmtime.Store._context")
    if "_func" not in getattr(wasmtime.Func, "__annotations__", {}):
        raise AttributeError("wasmtime.Func._func")
    if ctypes.sizeof(_ValRaw) != 16 or ctypes.sizeof(_bindings.wasmtime_func_t) != 16:
        raise AttributeError("wasmtime_val_raw_t or wasmtime_func_t changed size")
except (ImportError, AttributeError, TypeError) as exc:  # pragma: no cover - other wasmtime
    _missing = f"{type(exc).__name__}: {exc}"

FAST_AVAILABLE = _missing is None

# A writable memoryview over raw memory (CPython's stable C API), without making a
# ctypes array type per memory size.
_memory_view = ctypes.pythonapi["PyMemoryView_FromMemory"]
_memory_view.restype = ctypes.py_object
_memory_view.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_PYBUF_WRITE = 0x200
_warned = False


class FastInvoker:
    """Checked-once calls through ``wasmtime_func_call_unchecked`` and raw memory copies."""

    mode = "fast"

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self._store = store
        self._memory = memory
        self._ctx = ctypes.c_void_p(ctypes.cast(store._context(), ctypes.c_void_p).value)
        self._trap = ctypes.c_void_p()
        self._ptrap = ctypes.c_void_p(ctypes.addressof(self._trap))
        self._base = ctypes.addressof(memory.data_ptr(store).contents)
        self._deadlines: dict[int, ctypes.c_uint64] = {}
        self._funcs: list[object] = []  # keeps the bound wasmtime_func_t and arrays alive
        # Memory only grows and (memory_may_move=False) its base stays put, so a
        # view of the length seen last stays valid; bounds checks use it and look
        # at the real length again only when it falls short.
        self._len = 0
        self._view = memoryview(b"")
        self._refresh()

    def bind(self, func: wasmtime.Func, params: int, result: str) -> Callable[..., int]:
        _check_type(self._store, func, params, result)
        args = (_ValRaw * max(params, 1))()
        self._funcs.append((func, args))
        first = args[0]
        second = args[1] if params >= 2 else None
        slots = [args[i] for i in range(params)]
        pargs = ctypes.c_void_p(ctypes.addressof(args))
        nargs = ctypes.c_size_t(len(args))
        fptr = ctypes.c_void_p(ctypes.addressof(func._func))
        ctx, ptrap, trap, call, fail = (
            self._ctx,
            self._ptrap,
            self._trap,
            _call_unchecked,
            self._fail,
        )

        if params == 1 and result == I32:

            def call1(a: int) -> int:
                first.i32 = a
                err = call(ctx, fptr, pargs, nargs, ptrap)
                if err or trap.value:
                    fail(err)
                return first.i32  # type: ignore[no-any-return]

            return call1
        if params == 2 and result == I64:

            def call2(a: int, b: int) -> int:
                first.i32 = a
                second.i32 = b  # type: ignore[union-attr]
                err = call(ctx, fptr, pargs, nargs, ptrap)
                if err or trap.value:
                    fail(err)
                return first.i64  # type: ignore[no-any-return]

            return call2

        def call_n(*values: int) -> int:
            if len(values) != params:
                raise TypeError(f"expected {params} arguments, got {len(values)}")
            for slot, value in zip(slots, values, strict=True):
                slot.i32 = value
            err = call(ctx, fptr, pargs, nargs, ptrap)
            if err or trap.value:
                fail(err)
            return first.i32 if result == I32 else first.i64  # type: ignore[no-any-return]

        return call_n

    def _fail(self, err: int | None) -> None:
        """Raise what the public API raises for this failed call (and clear the trap slot)."""
        trap = self._trap.value
        self._trap.value = None
        if err:
            raise _error_from_ptr(ctypes.cast(err, _ErrorPtr))
        raise _trap_from_ptr(ctypes.cast(trap, _TrapPtr))

    def set_deadline(self, ticks: int) -> None:
        value = self._deadlines.get(ticks)
        if value is None:
            if len(self._deadlines) > 64:
                self._deadlines.clear()
            value = self._deadlines[ticks] = ctypes.c_uint64(ticks)
        _set_deadline(self._ctx, value)

    def set_fuel(self, fuel: int) -> None:
        err = _set_fuel(self._ctx, ctypes.c_uint64(fuel))
        if err:
            raise _error_from_ptr(ctypes.cast(err, _ErrorPtr))

    def write(self, ptr: int, data: bytes) -> None:
        end = ptr + len(data)
        if ptr < 0 or (end > self._len and end > self._refresh()):
            raise IndexError(f"[{ptr}, +{len(data)}) is outside guest memory")
        self._view[ptr:end] = data

    def read(self, ptr: int, length: int) -> bytes:
        end = ptr + length
        if ptr < 0 or length < 0 or (end > self._len and end > self._refresh()):
            raise IndexError(f"[{ptr}, +{length}) is outside guest memory")
        return self._view[ptr:end].tobytes()

    def data_len(self) -> int:
        return self._refresh()

    def _refresh(self) -> int:
        size = self._memory.data_len(self._store)
        base = ctypes.addressof(self._memory.data_ptr(self._store).contents)
        if base != self._base:  # pragma: no cover - only if memory_may_move were on
            log.error("guest memory moved; memory_may_move must be False", old=self._base, new=base)
            self._base = base
            self._len = -1
        if size != self._len:
            self._len = size
            self._view = _memory_view(base, size, _PYBUF_WRITE)
        return size


def invoker(store: wasmtime.Store, memory: wasmtime.Memory, fast: bool | None = None) -> Invoker:
    """The fast invoker when available (and not turned off), else the public one.

    ``fast=None`` follows ``FSWORKER_FASTCALL`` (``0`` turns the fast path off).
    """
    global _warned
    if fast is None:
        fast = os.environ.get("FSWORKER_FASTCALL", "1") != "0"
    if fast and not FAST_AVAILABLE:
        if not _warned:
            _warned = True
            log.warning(
                "wasmtime-py private names are missing; using the public call path (slower). "
                "Re-check fsworker/fastcall.py against the installed wasmtime.",
                missing=_missing,
            )
        fast = False
    return FastInvoker(store, memory) if fast else PublicInvoker(store, memory)
