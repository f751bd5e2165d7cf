"""The worker's side of the event channel to fsd (ZeroMQ PUSH, never blocks the loop)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import zmq

from fscommon.protocol import EventKind, encode_event


class FsdLink:
    """Sends ready / heartbeat / error events; drops them if fsd is not reading."""

    def __init__(self, endpoint: str, function: str, replica: int) -> None:
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, 500)
        # A small queue: stale heartbeats are worthless, and the loop must never block.
        self._sock.setsockopt(zmq.SNDHWM, 100)
        self._sock.connect(endpoint)
        self._function = function
        self._replica = replica
        self._pid = os.getpid()

    def send(self, kind: EventKind, **fields: Any) -> None:
        """Send one event without blocking; a full queue drops it."""
        frame = encode_event(kind, self._function, self._replica, self._pid, **fields)
        with contextlib.suppress(zmq.Again):
            self._sock.send(frame, zmq.NOBLOCK)

    def close(self) -> None:
        """Flush what is queued (bounded by LINGER) and close."""
        self._sock.close()
