"""The host side of a component's imports: ``host`` and ``batch`` (wit/function-stream.wit).

``host`` is the host API (state, config, log, message metadata) bound to one
HostContext. ``batch`` (``select-input``) is what a ``process-batch`` call uses
to say which of its inputs the metadata functions refer to: the host keeps one
MessageMeta and one OutputMeta per input of the call and points the
HostContext at input ``index``'s (each call starts at input 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog
import wasmtime
from wasmtime import component as wc

from fsworker.guest_component_call import add_u32_func
from fsworker.host_api import HostCallError
from fsworker.host_context import HostContext, MessageMeta, OutputMeta
from fsworker.state_store import StateError

log = structlog.get_logger("fsworker.guest_component")

# The interfaces a component may import (wit/function-stream.wit).
HOST_INTERFACE = "function-stream:function/host@1.0.0"
BATCH_INTERFACE = "function-stream:function/batch@1.0.0"

# Longest guest log line kept.
MAX_LOG_CHARS = 4096

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


class HostFunctions:
    """The ``host`` and ``batch`` imports, bound to one HostContext.

    A bad argument, a StateError or any other exception becomes a trap whose
    message names the import (``host.state-add: ...``), so the call fails with
    kind ``trap`` and the instance is rebuilt.
    """

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self._pending: BaseException | None = None
        # The inputs of the current call: their metadata, and what the guest sets.
        self._metas: Sequence[MessageMeta] = (MessageMeta(),)
        self.outputs: list[OutputMeta] = [OutputMeta()]

    def define(self, linker: wc.Linker) -> None:
        """Define every function of both interfaces on ``linker``."""
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
        with linker.root() as root:
            with root.add_instance(HOST_INTERFACE) as instance:
                for name, fn in funcs.items():
                    instance.add_func(name, self._guarded(f"host.{name}", fn))
            with root.add_instance(BATCH_INTERFACE) as instance:
                # Called once per input of a batch that uses metadata: the cheap path.
                select = self._guarded("batch.select-input", self.select)
                add_u32_func(instance, "select-input", select)

    def begin(self, metas: Sequence[MessageMeta]) -> None:
        """Before a call with these inputs (one MessageMeta each): input 0 is current."""
        self._metas = metas
        self.outputs = [OutputMeta() for _ in metas]
        self.select(0)

    def select(self, index: int) -> None:
        """Make input ``index`` of the current call the one metadata refers to."""
        if not 0 <= index < len(self._metas):
            raise HostCallError(
                f"input index {index} is outside this call's {len(self._metas)} inputs"
            )
        self.host.message = self._metas[index]
        self.host.output = self.outputs[index]

    def raise_pending(self) -> None:
        """Re-raise a KeyboardInterrupt/SystemExit that arrived inside a host function."""
        pending, self._pending = self._pending, None
        if pending is not None:
            raise pending

    def _guarded(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` as a host function: any failure becomes a trap naming ``name``."""

        def call(_store: object, *args: Any) -> Any:
            try:
                return fn(*args)
            except (HostCallError, StateError) as exc:
                detail = str(exc)
            except Exception as exc:
                log.error("host function failed", function=name, exc_info=exc)
                detail = f"internal error: {type(exc).__name__}: {exc}"
            except BaseException as exc:  # KeyboardInterrupt: trap now, re-raise after the call
                self._pending = exc
                detail = f"interrupted ({type(exc).__name__})"
            detail = " ".join(detail.split())[:500]
            raise wasmtime.WasmtimeError(f"{name}: {detail}")

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
