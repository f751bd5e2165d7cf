"""The worker event socket: the PULL socket every fsworker reports on.

Workers push ready, heartbeat and error events (fscommon/protocol.py)
to ``events_endpoint``; fsd's loop polls ``socket`` and hands each decoded
event to the supervisor. A frame that does not decode is logged and dropped,
so one confused worker cannot stop fsd reading the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
import zmq

from fscommon.protocol import MAX_EVENT_BYTES, ProtocolError, decode_event

# The daemon's logger: these lines read as fsd's own, as they did before this module.
log = structlog.get_logger("fsd")


class WorkerEvents:
    """Binds the PULL socket on ``endpoint`` (ipc://, owner-only) and reads events off it."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.socket = ctx.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        # A worker cannot make fsd allocate more than the largest event there is.
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_EVENT_BYTES)
        self._path = Path(endpoint[len("ipc://") :])
        self._path.unlink(missing_ok=True)
        self.socket.bind(endpoint)
        os.chmod(self._path, 0o600)

    def drain(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        """Pass every event waiting on the socket to ``on_event``, without blocking."""
        while True:
            try:
                frame = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                event = decode_event(frame)
            except ProtocolError as exc:
                log.warning("bad worker event", error=exc.message)
                continue
            on_event(event)

    def close(self) -> None:
        """Close the socket and remove its file."""
        self.socket.close()
        self._path.unlink(missing_ok=True)
