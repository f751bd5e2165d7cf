"""The control endpoint: a ZeroMQ ROUTER that decodes requests and routes replies.

Handlers either return the reply's data at once or a ``Deferred`` that the
main loop polls (delete waits for the workers to exit without blocking fsd).
Any exception in a handler becomes an error reply; nothing a client sends can
stop the daemon.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import zmq

from fscommon.paths import ipc_path
from fscommon.protocol import (
    MAX_REQUEST_BYTES,
    ErrorCode,
    ProtocolError,
    decode_request,
    encode_error,
    encode_ok,
)

log = structlog.get_logger("fsd.control")


class HandlerError(Exception):
    """A request that fails for a reason the client should read."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Deferred:
    """A reply that is not ready yet: ``poll()`` returns the data once it is.

    ``poll`` returns None while waiting and may raise HandlerError; after
    ``deadline`` (monotonic) ``on_timeout`` produces the reply instead.
    """

    poll: Callable[[], Any]
    deadline: float
    on_timeout: Callable[[], Any]


Handler = Callable[[dict[str, Any]], Any]


class EndpointInUse(Exception):
    """Another fsd already answers at the endpoint."""


@dataclass
class _Pending:
    identity: bytes
    request_id: int
    deferred: Deferred


class ControlServer:
    """Binds the ROUTER socket and dispatches requests to handlers by command name."""

    def __init__(self, ctx: zmq.Context, endpoint: str, handlers: dict[str, Handler]) -> None:
        self.endpoint = endpoint
        self._handlers = handlers
        self._pending: list[_Pending] = []
        path = ipc_path(endpoint)
        if path is not None:
            _claim_ipc_path(ctx, endpoint, path)
        self.socket = ctx.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES + 4096)
        # A client that vanished must not make send() block or raise.
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.socket.bind(endpoint)
        if path is not None:
            os.chmod(path, 0o660)

    def close(self) -> None:
        """Close the socket and remove the ipc file."""
        self.socket.close()
        path = ipc_path(self.endpoint)
        if path is not None:
            path.unlink(missing_ok=True)

    def handle_readable(self) -> None:
        """Serve every request waiting on the socket."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            identity, frame = frames[0], frames[-1]
            self._serve(identity, frame)

    def _serve(self, identity: bytes, frame: bytes) -> None:
        try:
            request = decode_request(frame)
        except ProtocolError as exc:
            self._send(identity, encode_error(None, exc.code, exc.message))
            return
        handler = self._handlers.get(request.cmd)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            self._send(
                identity,
                encode_error(
                    request.id,
                    ErrorCode.UNKNOWN_COMMAND,
                    f"unknown command {request.cmd!r}; known commands: {known}",
                ),
            )
            return
        try:
            result = handler(request.args)
        except HandlerError as exc:
            self._send(identity, encode_error(request.id, exc.code, exc.message))
            return
        except Exception as exc:
            log.exception("handler failed", cmd=request.cmd)
            self._send(
                identity,
                encode_error(
                    request.id, ErrorCode.INTERNAL, f"internal error in '{request.cmd}': {exc!r}"
                ),
            )
            return
        if isinstance(result, Deferred):
            self._pending.append(_Pending(identity, request.id, result))
            self.poll_pending()
        else:
            self._send(identity, encode_ok(request.id, result))

    def poll_pending(self) -> None:
        """Send the replies whose deferred result is ready (called every loop turn)."""
        still: list[_Pending] = []
        now = time.monotonic()
        for pending in self._pending:
            try:
                data = pending.deferred.poll()
                if data is None and now >= pending.deferred.deadline:
                    data = pending.deferred.on_timeout()
            except HandlerError as exc:
                self._send(
                    pending.identity, encode_error(pending.request_id, exc.code, exc.message)
                )
                continue
            except Exception as exc:
                log.exception("deferred reply failed")
                self._send(
                    pending.identity,
                    encode_error(
                        pending.request_id, ErrorCode.INTERNAL, f"internal error: {exc!r}"
                    ),
                )
                continue
            if data is None:
                still.append(pending)
            else:
                self._send(pending.identity, encode_ok(pending.request_id, data))
        self._pending = still

    def _send(self, identity: bytes, frame: bytes) -> None:
        try:
            self.socket.send_multipart([identity, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("could not send a reply", error=str(exc))


def _claim_ipc_path(ctx: zmq.Context, endpoint: str, path: Path) -> None:
    """Refuse to start when another fsd answers at ``path``; remove a stale socket file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        return
    from fscommon.protocol import decode_reply, encode_request

    probe = ctx.socket(zmq.DEALER)
    probe.setsockopt(zmq.LINGER, 0)
    try:
        probe.connect(endpoint)
        probe.send(encode_request(0, "ping"))
        if probe.poll(1000, zmq.POLLIN):
            with contextlib.suppress(ProtocolError):
                decode_reply(probe.recv())
            raise EndpointInUse(
                f"another fsd is already running at {endpoint}; stop it first, or start this one "
                f"with --endpoint"
            )
    finally:
        probe.close()
    path.unlink(missing_ok=True)
