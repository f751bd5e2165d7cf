"""How the host functions reach wasmtime: its unchecked interface, or wasmtime-py's public one.

The unchecked interface (``wasmtime_linker_define_func_unchecked``) takes one
ctypes callback per import that reads its arguments straight from wasmtime's
``wasmtime_val_raw_t`` array and returns a ``wasm_trap_t *`` (NULL on success):
about 0.5 us per call, against 6-7 us through ``Linker.define_func``, which wraps
every argument in a ``Val`` and makes a ``Caller``. It uses wasmtime-py private
names (for wasmtime-py 50.0.1): ``wasmtime._ffi.dll`` for the two C functions, and
``Linker.ptr()`` / ``FuncType.ptr()`` for the C handles. When they are missing
``RAW_AVAILABLE`` is False and fsworker/host_api.py defines its imports through
``public_callback`` (same results and trap messages, slower).

What the imports do is fsworker/host_api.py's; here is only how they are called.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import wasmtime

I32 = "i32"
I64 = "i64"

# (import name, exception inside it) -> the one-line trap message.
Failure = Callable[[str, BaseException], str]

_U32 = 0xFFFFFFFF

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_void_p,  # wasm_trap_t *: NULL on success
    ctypes.c_void_p,  # void *env (unused: each import has its own callback)
    ctypes.c_void_p,  # wasmtime_caller_t *
    ctypes.POINTER(ctypes.c_int32),  # wasmtime_val_raw_t *args (16 bytes = 4 int32 each)
    ctypes.c_size_t,  # number of args and results
)
_missing: str | None = None
try:
    from wasmtime import _ffi

    _define_unchecked = _ffi.dll["wasmtime_linker_define_func_unchecked"]
    _define_unchecked.restype = ctypes.c_void_p  # wasmtime_error_t *
    _define_unchecked.argtypes = (
        ctypes.c_void_p,  # wasmtime_linker_t *
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_void_p,  # const wasm_functype_t *
        _CALLBACK,
        ctypes.c_void_p,  # void *data
        ctypes.c_void_p,  # finalizer (none)
    )
    _trap_new = _ffi.dll["wasmtime_trap_new"]
    _trap_new.restype = ctypes.c_void_p
    _trap_new.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
    if not callable(getattr(wasmtime.Linker, "ptr", None)) or not callable(
        getattr(wasmtime.FuncType, "ptr", None)
    ):
        raise AttributeError("wasmtime.Linker.ptr or wasmtime.FuncType.ptr")
    if ctypes.sizeof(_ffi.wasmtime_val_raw_t) != 16:
        raise AttributeError("wasmtime_val_raw_t changed size")
except (ImportError, AttributeError, TypeError) as exc:  # pragma: no cover - other wasmtime
    _missing = f"{type(exc).__name__}: {exc}"

RAW_AVAILABLE = _missing is None


def define_unchecked(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    fn: Callable[..., None],
    params: tuple[str, ...],
    fail: Failure,
) -> object:
    """Define ``module.name`` on ``linker`` through the unchecked interface.

    Returns the ctypes callback, which the caller must keep alive as long as the linker.
    """
    callback = _CALLBACK(raw_callback(name, fn, params, fail))
    module_b, field = module.encode(), name.encode()
    err = _define_unchecked(
        ctypes.cast(linker.ptr(), ctypes.c_void_p),
        module_b,
        len(module_b),
        field,
        len(field),
        ctypes.cast(ty.ptr(), ctypes.c_void_p),
        callback,
        None,
        None,
    )
    if err:  # pragma: no cover - only on a name clash
        raise wasmtime.WasmtimeError._from_ptr(
            ctypes.cast(err, ctypes.POINTER(_ffi.wasmtime_error_t))
        )
    return callback


def raw_callback(
    name: str, fn: Callable[..., None], params: tuple[str, ...], fail: Failure
) -> Callable[..., int | None]:
    """The unchecked callback for one import: decode the raw args, trap on failure.

    Argument i is the 16-byte slot i: int32 index 4*i (its low half for an i64).
    """

    def trap(exc: BaseException) -> int:
        message = fail(name, exc).encode()
        return _trap_new(message, len(message))  # type: ignore[no-any-return]

    m = _U32
    arity = len(params)
    if params == (I32, I32, I64, I32):  # state_add

        def cb(env, caller, a, n):  # type: ignore[no-untyped-def]
            try:
                fn(a[0] & m, a[4] & m, (a[8] & m) | (a[9] << 32), a[12] & m)
            except BaseException as exc:
                return trap(exc)
            return None

    elif params == (I64,):  # set_output_event_time

        def cb(env, caller, a, n):  # type: ignore[no-untyped-def]
            try:
                fn((a[0] & m) | (a[1] << 32))
            except BaseException as exc:
                return trap(exc)
            return None

    elif I64 in params:  # pragma: no cover - every import is handled above
        raise AssertionError(f"no raw decoder for {name}{params}")
    elif arity == 1:

        def cb(env, caller, a, n):  # type: ignore[no-untyped-def]
            try:
                fn(a[0] & m)
            except BaseException as exc:
                return trap(exc)
            return None

    elif arity == 2:

        def cb(env, caller, a, n):  # type: ignore[no-untyped-def]
            try:
                fn(a[0] & m, a[4] & m)
            except BaseException as exc:
                return trap(exc)
            return None

    elif arity == 3:

        def cb(env, caller, a, n):  # type: ignore[no-untyped-def]
            try:
                fn(a[0] & m, a[4] & m, a[8] & m)
            except BaseException as exc:
                return trap(exc)
            return None

    elif arity == 4:

        def cb(env, caller, a, n):  # type: ignore[no-untyped-def]
            try:
                fn(a[0] & m, a[4] & m, a[8] & m, a[12] & m)
            except BaseException as exc:
                return trap(exc)
            return None

    else:

        def cb(env, caller, a, n):  # type: ignore[no-untyped-def]
            try:
                fn(a[0] & m, a[4] & m, a[8] & m, a[12] & m, a[16] & m)
            except BaseException as exc:
                return trap(exc)
            return None

    return cb  # type: ignore[no-any-return]


def public_callback(
    name: str, fn: Callable[..., None], params: tuple[str, ...], fail: Failure
) -> Callable[..., None]:
    """A wasmtime-py host function (the fallback): traps with the same message."""
    unsigned = tuple(t == I32 for t in params)

    def call(*args: int) -> None:
        try:
            fn(*[a & _U32 if u else a for a, u in zip(args, unsigned, strict=True)])
        except Exception as exc:
            raise wasmtime.Trap(fail(name, exc)) from None

    return call
