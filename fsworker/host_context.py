"""What the host API (docs/abi.md, module "fs") reads and writes for the guest.

The wasm side (fsworker/host_api.py) turns guest calls into calls on a
``HostContext``; the processing loop sets the current message before each
per-message call and reads what the guest set for its outputs afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from fsworker.state_store import StateStore, StateTransaction

log = structlog.get_logger("fsworker.guest")

LOG_LEVELS = {0: "debug", 1: "info", 2: "warning", 3: "error"}


@dataclass
class MessageMeta:
    """The current input's metadata, as the guest may read it."""

    key: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    event_time: int = 0  # ms since the epoch; 0 = not set


@dataclass
class OutputMeta:
    """What the guest set for the outputs of the current input (None: pass through)."""

    key: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    event_time: int | None = None


class HostContext:
    """State, config, log and message metadata for one replica's guest."""

    def __init__(self, config: dict[str, str], store: StateStore | None) -> None:
        self.config = {k.encode(): v.encode() for k, v in config.items()}
        self.transaction = StateTransaction(store) if store is not None else None
        self.message = MessageMeta()
        self.output = OutputMeta()

    # state ---------------------------------------------------------------------------------

    def _tx(self) -> StateTransaction:
        if self.transaction is None:
            from fsworker.state_store import StateError

            raise StateError("this function has no state store")
        return self.transaction

    def state_get(self, key: bytes) -> bytes | None:
        """The value (this batch's writes included), or None when missing."""
        return self._tx().get(key)

    def state_put(self, key: bytes, value: bytes) -> None:
        """Set a value (committed before the message is acknowledged)."""
        self._tx().put(key, value)

    def state_delete(self, key: bytes) -> None:
        """Remove a key."""
        self._tx().delete(key)

    def state_add(self, key: bytes, delta: int) -> int:
        """Add to a decimal-integer value (missing = 0); returns the new value."""
        return self._tx().add(key, delta)

    def savepoint(self) -> int:
        """Taken by the guest before each call into wasm."""
        return self.transaction.savepoint() if self.transaction is not None else 0

    def rollback_to(self, savepoint: int) -> None:
        """After a failed call: forget the state writes it made."""
        if self.transaction is not None:
            self.transaction.rollback_to(savepoint)

    # config and log ------------------------------------------------------------------------

    def config_get(self, key: bytes) -> bytes | None:
        """A value of the function's --config map, or None."""
        return self.config.get(key)

    def log(self, level: int, message: str) -> None:
        """A guest log line, into the worker's structured log (function and replica bound)."""
        name = LOG_LEVELS.get(level, "info")
        getattr(log, name)(message, source="guest")

    # per-message metadata --------------------------------------------------------------------

    def begin_message(self, meta: MessageMeta) -> None:
        """Called before the guest processes one input."""
        self.message = meta
        self.output = OutputMeta()
