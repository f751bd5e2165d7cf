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

Access: an ipc socket is mode 0660, optionally chowned to ``control_group``.
A TCP endpoint needs ZeroMQ CURVE: fsd's key pair plus an allow-list of
client public keys, enforced by a ZAP handler served from fsd's own poller
(see ``CurveServer``), so fsd stays one thread.
"""

from __future__ import annotations

import contextlib
import grp
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import zmq
from zmq.utils import z85

from fscommon.curve_keys import KeyFileError, load_allowed_clients
from fscommon.paths import ipc_path
from fscommon.protocol import (
    MAX_REQUEST_BYTES,
    ErrorCode,
    ProtocolError,
    decode_request,
    encode_error,
    encode_ok,
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


class ControlEndpointError(Exception):
    """The control endpoint cannot be set up as configured; the message says what to do."""


class EndpointInUse(ControlEndpointError):
    """Another fsd (or another program) already owns the endpoint."""


# ZeroMQ's fixed address for the ZAP handler (RFC 27) of a context.
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"fsd"
# Commands that only read; the others are logged with the client's key name.
READ_ONLY_COMMANDS = frozenset({"ping", "info", "list", "status"})


@dataclass(frozen=True)
class CurveServer:
    """fsd's CURVE key pair (Z85) and where the allowed client public keys live."""

    public_key: bytes
    secret_key: bytes
    allowed_clients: Path


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
            _claim_ipc_path(path)
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
            _bind(self.socket, endpoint, path)
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
        client = _client_name(payload) if self.zap is not None else None
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


def refuse_tcp_without_curve(endpoint: str) -> str:
    """The error for a TCP endpoint without keys (also used by the config check)."""
    return (
        f"endpoint {endpoint!r} is TCP, which fsd only serves with CURVE authentication: set "
        f"curve_secret_key (fsd's secret key file) and curve_allowed_clients (a client public "
        f"key file or a directory of them); create key pairs with 'fsctl keygen'"
    )


def group_id(group: str) -> int:
    """The gid of ``group`` (a name or a number); ControlEndpointError if there is none."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        pass
    if group.isdigit():
        return int(group)
    raise ControlEndpointError(
        f"control_group {group!r} does not exist; create it (groupadd {group}) or set "
        f"control_group to an existing group"
    )


def restrict_ipc_socket(path: Path, gid: int | None) -> None:
    """Mode 0660 on the socket file, owned by ``gid`` when given (members may use fsctl)."""
    if gid is not None:
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            raise ControlEndpointError(
                f"cannot give {path} to group {gid}: fsd's user must be root or a member of that "
                f"group (control_group)"
            ) from None
    os.chmod(path, 0o660)


def _bind(sock: zmq.Socket, endpoint: str, path: Path | None) -> None:
    # Create the ipc socket file 0600 so no one can connect before its mode and group are set.
    old_umask = os.umask(0o177) if path is not None else None
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        if exc.errno == zmq.EADDRINUSE:
            raise EndpointInUse(
                f"{endpoint} is already in use (another fsd, or another program, listens there); "
                f"stop it or choose another endpoint"
            ) from None
        raise ControlEndpointError(f"cannot bind the control endpoint {endpoint}: {exc}") from None
    finally:
        if old_umask is not None:
            os.umask(old_umask)


def _claim_ipc_path(path: Path) -> None:
    """Refuse when a process listens at ``path``; remove a stale socket file left by a crash.

    A plain connect() decides, not a ping: a live fsd busy for a second (compiling a
    module) must still count as alive, and its socket must never be taken over.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlEndpointError(
            f"{path} exists and is not a socket; remove it or choose another endpoint"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        path.unlink(missing_ok=True)  # nobody listens: left over from a crash
        return
    except OSError as exc:
        raise ControlEndpointError(f"cannot check {path}: {exc.strerror}") from None
    finally:
        probe.close()
    raise EndpointInUse(
        f"another fsd is already running at ipc://{path}; stop it first, or start this one "
        f"with --endpoint"
    )


def _client_name(frame: zmq.Frame) -> str | None:
    """The allow-list name the ZAP handler gave the client (its key file's name)."""
    with contextlib.suppress(zmq.ZMQError, KeyError, UnicodeDecodeError):
        return frame.get("User-Id") or None
    return None


class ZapHandler:
    """ZeroMQ's authentication protocol (ZAP, RFC 27) for CURVE, served from fsd's poller.

    pyzmq's ThreadAuthenticator would add a thread to a daemon that is otherwise one
    thread and forks workers, and its base handler is a coroutine in pyzmq 27; the
    protocol is six frames in, six out. The allow-list is read again at each handshake
    (one per fsctl call), so adding or removing a key file needs no restart; if it
    cannot be read, the last good list stays in force.
    """

    VERSION = b"1.0"

    def __init__(self, ctx: zmq.Context, curve: CurveServer) -> None:
        self._allowed_path = curve.allowed_clients
        try:
            self._allowed = load_allowed_clients(curve.allowed_clients)
        except KeyFileError as exc:
            raise ControlEndpointError(str(exc)) from None
        self.socket = ctx.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            self.socket.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            self.socket.close()
            raise ControlEndpointError(f"cannot start CURVE authentication: {exc}") from None

    def close(self) -> None:
        """Close the ZAP socket."""
        self.socket.close()

    def handle_readable(self) -> None:
        """Answer every waiting authentication request."""
        while True:
            try:
                msg = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = self._reply(msg)
            except Exception:  # a REP socket must answer, and a bug must not let anyone in
                log.exception("ZAP request failed")
                reply = [self.VERSION, msg[1] if len(msg) > 1 else b"", b"500", b"error", b"", b""]
            self.socket.send_multipart(reply)

    def _reply(self, msg: list[bytes]) -> list[bytes]:
        request_id = msg[1] if len(msg) > 1 else b""
        if len(msg) < 7 or msg[0] != self.VERSION or msg[5] != b"CURVE":
            return [self.VERSION, request_id, b"400", b"CURVE only", b"", b""]
        address, key = msg[3].decode("utf-8", "replace"), msg[6]
        client_key = z85.encode(key) if len(key) == 32 else b""
        name = self._allowed_clients().get(client_key)
        if name is None:
            log.warning(
                "refused control client: key not allowed", key=client_key.decode(), peer=address
            )
            return [self.VERSION, request_id, b"400", b"client key not allowed", b"", b""]
        return [self.VERSION, request_id, b"200", b"OK", name.encode(), b""]

    def _allowed_clients(self) -> dict[bytes, str]:
        try:
            self._allowed = load_allowed_clients(self._allowed_path)
        except KeyFileError as exc:
            log.error("cannot reload curve_allowed_clients; keeping the last list", error=str(exc))
        return self._allowed
