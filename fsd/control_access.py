"""Who may use the control endpoint: the ipc socket's file, CURVE for TCP, the ZAP handler.

An ipc socket is created mode 0600 and then set to 0660, optionally owned by
``control_group`` (its members may use fsctl); a stale socket file left by a crash
is removed, a live one refused. A TCP endpoint needs ZeroMQ CURVE: fsd's key pair
plus an allow-list of client public keys, enforced by a ZAP handler served from
fsd's own poller, so fsd stays one thread.
"""

from __future__ import annotations

import contextlib
import grp
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

import structlog
import zmq
from zmq.utils import z85

from fscommon.curve_keys import KeyFileError, load_allowed_clients

log = structlog.get_logger("fsd.control")


class ControlEndpointError(Exception):
    """The control endpoint cannot be set up as configured; the message says what to do."""


class EndpointInUse(ControlEndpointError):
    """Another fsd (or another program) already owns the endpoint."""


# ZeroMQ's fixed address for the ZAP handler (RFC 27) of a context.
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"fsd"


@dataclass(frozen=True)
class CurveServer:
    """fsd's CURVE key pair (Z85) and where the allowed client public keys live."""

    public_key: bytes
    secret_key: bytes
    allowed_clients: Path


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


def bind_endpoint(sock: zmq.Socket, endpoint: str, path: Path | None) -> None:
    """Bind ``sock``; EndpointInUse or ControlEndpointError with what to do if it cannot."""
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


def claim_ipc_path(path: Path) -> None:
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


def client_name(frame: zmq.Frame) -> str | None:
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
