"""The notices socket: fsd's PUB socket that 'fsctl events' subscribes to.

Replica state changes and the autoscaler's decisions go out here, one
function per topic frame; the frames are built by fscommon/protocol.py
``encode_notice``. Sending never blocks fsd's loop: a watcher that cannot keep
up loses notices, never slows the supervisor.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from fscommon.protocol import NoticeKind, encode_notice
from fsd.control_access import group_id, restrict_ipc_socket

if TYPE_CHECKING:
    from fsd.replica import Replica
    from fsd.replica_state import ReplicaState


class Notices:
    """Binds the PUB socket on ``endpoint`` (ipc://) and publishes notices on it."""

    def __init__(self, ctx: zmq.Context, endpoint: str, group: str | None) -> None:
        self._path = Path(endpoint[len("ipc://") :])
        self._socket: zmq.Socket | None = ctx.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._path.unlink(missing_ok=True)
        self._socket.bind(endpoint)
        restrict_ipc_socket(self._path, group_id(group) if group else None)

    def publish(self, kind: NoticeKind, function: str, **fields: Any) -> None:
        """Send one notice (dropped if the socket is closed or a watcher is full)."""
        if self._socket is None:
            return
        frames = encode_notice(kind, function, time.time(), **fields)
        with contextlib.suppress(zmq.ZMQError):
            self._socket.send_multipart(frames, zmq.NOBLOCK)

    def replica(self, replica: Replica, old: ReplicaState, new: ReplicaState, reason: str) -> None:
        """A replica state change (the supervisor's transition listener)."""
        self.publish(
            NoticeKind.REPLICA,
            replica.function,
            replica=replica.index,
            old=str(old),
            new=str(new),
            reason=reason,
            pid=replica.pid or replica.last_pid,
        )

    def scale(self, function: str, fields: dict[str, Any]) -> None:
        """An autoscaling decision (fsd/autoscaler.py)."""
        self.publish(NoticeKind.SCALE, function, **fields)

    def close(self) -> None:
        """Close the socket and remove its file."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        with contextlib.suppress(OSError):
            os.unlink(self._path)
