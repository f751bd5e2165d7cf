"""The control endpoint: a ZeroMQ ROUTER that decodes requests and routes replies.

Handlers either return the reply's data at once or a ``Deferred`` that the
main loop polls (delete waits for the workers to exit without blocking fsd).
Any exception in a handler becomes an error reply; nothing a client sends can
stop the daemon.

Before a handler runs, a request passes the size limit (ZMQ_MAXMSGSIZE drops a
larger frame and its connection; an explicit check answers frames just over
the limit and multi-frame requests), the shape and envelope checks
(fscommon.protocol: depth, number of values and extension types are read from
the bytes before decoding) and the command's argument schema
(fsd.request_validation). Every reply, errors included, goes back with the
empty delimiter a REQ client sent, or that client's socket would drop it.

Who may connect (ipc socket mode and group, CURVE for TCP, the ZAP handler)
is set up by fsd.control_access.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from fsd.control_access import (
    ZAP_DOMAIN,
    ControlEndpointError,
    CurveServer,
    ZapHandler,
    bind_endpoint,
    claim_ipc_path,
    client_name,
    group_id,
    refuse_tcp_without_curve,
    restrict_ipc_socket,
)
from fsd.request_validation import RequestInvalid, describe, validate_args

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


# Commands that only read; the others are logged with the client's key name.
READ_ONLY_COMMANDS = frozenset({"ping", "info", "list", "status"})


@dataclass
class _Pending:
    identity: bytes
    request_id: int
    deferred: Deferred
    envelope: list[bytes]


@dataclass
class _Served:
    """What is known of the request being served, for an error reply if serving it fails."""

    request_id: int | None = None
    cmd: str | None = None


def reply_envelope(first: list[bytes], count: int) -> list[bytes]:
    """The frames a reply carries before its payload: the empty delimiter a REQ client puts
    before its request (its socket drops a reply without one), else none.

    ``first`` holds the request's first frame after the routing identity, ``count`` is how
    many frames it had; a lone empty frame is a (bad) request, not a delimiter.
    """
    return [b""] if count > 1 and first == [b""] else []


def _request_id(frame: bytes) -> int | None:
    """The id of a request that came with extra frames, if its payload decodes."""
    try:
        return decode_request(frame).id
    except ProtocolError:
        return None


# Room for msgpack's envelope around the largest accepted request, so a frame just over the
# limit still gets an explicit error reply; anything larger is dropped by libzmq unanswered.
MAXMSGSIZE_SLACK = 4096


class ControlServer:
    """Binds the ROUTER socket and dispatches requests to handlers by command name."""

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        handlers: dict[str, Handler],
        *,
        group: str | None = None,
        curve: CurveServer | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        validator: Callable[[str, dict[str, Any]], None] = validate_args,
    ) -> None:
        self.endpoint = endpoint
        self._handlers = handlers
        self._validator = validator
        self._pending: list[_Pending] = []
        self.max_request_bytes = max_request_bytes
        path = ipc_path(endpoint)
        if path is None and not endpoint.startswith("tcp://"):
            raise ControlEndpointError(
                f"endpoint {endpoint!r} is not supported: use ipc://PATH or tcp://HOST:PORT"
            )
        if path is None and curve is None:
            raise ControlEndpointError(refuse_tcp_without_curve(endpoint))
        gid = group_id(group) if group else None
        if path is not None:
            claim_ipc_path(path)
        # The ZAP handler must be bound before the CURVE socket: without one, libzmq lets
        # every client with any key in.
        self.zap: ZapHandler | None = ZapHandler(ctx, curve) if curve is not None else None
        self.socket = ctx.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_request_bytes + MAXMSGSIZE_SLACK)
        # A client that vanished must not make send() block or raise.
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        if curve is not None:
            self.socket.curve_server = True
            self.socket.curve_secretkey = curve.secret_key
            self.socket.curve_publickey = curve.public_key
            self.socket.zap_domain = ZAP_DOMAIN
        try:
            bind_endpoint(self.socket, endpoint, path)
            if path is not None:
                restrict_ipc_socket(path, gid)
        except BaseException:
            self.socket.close()
            if self.zap is not None:
                self.zap.close()
            if path is not None and path.exists() and stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()  # ours: bound a moment ago, refused before anyone could use it
            raise

    @property
    def zap_socket(self) -> zmq.Socket | None:
        """The ZAP handler's socket, for the daemon's poller (None without CURVE)."""
        return self.zap.socket if self.zap is not None else None

    def handle_zap(self) -> None:
        """Answer the pending CURVE authentication requests."""
        if self.zap is not None:
            self.zap.handle_readable()

    def close(self) -> None:
        """Close the sockets and remove the ipc file."""
        self.socket.close()
        if self.zap is not None:
            self.zap.close()
        path = ipc_path(self.endpoint)
        if path is not None:
            path.unlink(missing_ok=True)

    def handle_readable(self) -> None:
        """Serve every request waiting on the socket; nothing a client sends escapes this."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            identity, parts = frames[0].bytes, frames[1:]
            envelope = reply_envelope([p.bytes for p in parts[:1]], len(parts))
            served = _Served()
            try:
                self._serve_frames(identity, envelope, parts, served)
            except Exception as exc:  # a bug must cost one request, never the daemon
                log.exception("control request failed unexpectedly", cmd=served.cmd)
                self._send(
                    identity,
                    envelope,
                    encode_error(served.request_id, ErrorCode.INTERNAL, f"internal error: {exc!r}"),
                )

    def _serve_frames(
        self, identity: bytes, envelope: list[bytes], parts: list[zmq.Frame], served: _Served
    ) -> None:
        payload = parts[-1]
        if len(parts) > len(envelope) + 1:
            if len(payload.buffer) <= self.max_request_bytes:
                served.request_id = _request_id(payload.bytes)
            self._send(
                identity,
                envelope,
                encode_error(
                    served.request_id,
                    ErrorCode.BAD_REQUEST,
                    f"a request is one frame (after an optional empty delimiter), got "
                    f"{len(parts)} frames",
                ),
            )
            return
        size = len(payload.buffer)
        if size > self.max_request_bytes:
            self._send(
                identity,
                envelope,
                encode_error(
                    None,
                    ErrorCode.BAD_REQUEST,
                    f"request of {size} bytes exceeds the {self.max_request_bytes}-byte limit "
                    f"(max_request_bytes)",
                ),
            )
            return
        client = client_name(payload) if self.zap is not None else None
        self._serve(identity, envelope, payload.bytes, client, served)

    def _serve(
        self,
        identity: bytes,
        envelope: list[bytes],
        frame: bytes,
        client: str | None,
        served: _Served,
    ) -> None:
        try:
            request = decode_request(frame)
        except ProtocolError as exc:
            self._send(identity, envelope, encode_error(None, exc.code, exc.message))
            return
        served.request_id, served.cmd = request.id, request.cmd
        handler = self._handlers.get(request.cmd)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            self._send(
                identity,
                envelope,
                encode_error(
                    request.id,
                    ErrorCode.UNKNOWN_COMMAND,
                    f"unknown command {describe(request.cmd)}; known commands: {known}",
                ),
            )
            return
        try:
            self._validator(request.cmd, request.args)
        except RequestInvalid as exc:
            self._send(identity, envelope, encode_error(request.id, exc.code, exc.message))
            return
        if request.cmd not in READ_ONLY_COMMANDS:
            log.info("control request", cmd=request.cmd, client=client)
        try:
            result = handler(request.args)
        except HandlerError as exc:
            self._send(identity, envelope, encode_error(request.id, exc.code, exc.message))
            return
        except Exception as exc:
            log.exception("handler failed", cmd=request.cmd)
            self._send(
                identity,
                envelope,
                encode_error(
                    request.id, ErrorCode.INTERNAL, f"internal error in '{request.cmd}': {exc!r}"
                ),
            )
            return
        if isinstance(result, Deferred):
            self._pending.append(_Pending(identity, request.id, result, envelope))
            self.poll_pending()
        else:
            self._send(identity, envelope, encode_ok(request.id, result))

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
                    pending.identity,
                    pending.envelope,
                    encode_error(pending.request_id, exc.code, exc.message),
                )
                continue
            except Exception as exc:
                log.exception("deferred reply failed")
                self._send(
                    pending.identity,
                    pending.envelope,
                    encode_error(
                        pending.request_id, ErrorCode.INTERNAL, f"internal error: {exc!r}"
                    ),
                )
                continue
            if data is None:
                still.append(pending)
            else:
                self._send(pending.identity, pending.envelope, encode_ok(pending.request_id, data))
        self._pending = still

    def _send(self, identity: bytes, envelope: list[bytes], frame: bytes) -> None:
        try:
            self.socket.send_multipart([identity, *envelope, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("could not send a reply", error=str(exc))
