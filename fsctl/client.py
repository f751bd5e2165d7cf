"""Talks to fsd: one DEALER socket, one request, one reply, a deadline."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from typing import Any

import zmq

from fscommon.paths import ipc_path
from fscommon.protocol import MAX_REQUEST_BYTES, ProtocolError, decode_reply, encode_request


@dataclass(frozen=True)
class ClientCurve:
    """CURVE keys (Z85) for a TCP endpoint: fsd's public key and this client's key pair."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes


class Unreachable(Exception):
    """fsd did not answer; the message names the endpoint and what to check."""


class CommandFailed(Exception):
    """fsd answered with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_ids = itertools.count(1)


def _unreachable(endpoint: str, why: str) -> Unreachable:
    return Unreachable(
        f"could not reach fsd at {endpoint}: {why}. Is fsd running? Start it with 'fsd' "
        f"(or 'systemctl start function-stream'), or point fsctl at it with --endpoint/FS_ENDPOINT"
    )


def _no_reply(endpoint: str, timeout: float, curve: ClientCurve | None) -> Unreachable:
    if curve is None:
        return _unreachable(endpoint, f"no reply within {timeout:.0f}s")
    # A CURVE server that refuses a key sends nothing back: silence is all fsctl sees.
    return Unreachable(
        f"no reply from fsd at {endpoint} within {timeout:.0f}s: fsd may have refused "
        f"authentication. Check that your client public key is in fsd's curve_allowed_clients "
        f"and that --server-key/FSCTL_SERVER_KEY is fsd's public key; else check that fsd runs"
    )


def call(
    endpoint: str,
    cmd: str,
    args: dict[str, Any] | None = None,
    timeout: float = 10.0,
    curve: ClientCurve | None = None,
) -> Any:
    """Send one request and return the reply's data; raises Unreachable or CommandFailed."""
    path = ipc_path(endpoint)
    if path is not None and not path.exists():
        raise _unreachable(endpoint, f"socket {path} does not exist")
    if path is not None and not os.access(path, os.R_OK | os.W_OK):
        raise _unreachable(endpoint, f"no permission to use socket {path}")
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    # Never hang on exit with an unsent request, nor wait on a lost reply.
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        sock.curve_serverkey = curve.server_public
        sock.curve_publickey = curve.client_public
        sock.curve_secretkey = curve.client_secret
    # Watch the handshake from before the connect: a refusal is reported once, at once.
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH) if curve else None
    try:
        sock.connect(endpoint)
        request_id = next(_ids)
        frame = encode_request(request_id, cmd, args)
        if len(frame) > MAX_REQUEST_BYTES:
            # fsd would drop it unanswered (ZMQ_MAXMSGSIZE); say why instead of timing out.
            raise CommandFailed(
                "too_large",
                f"the {cmd} request is {len(frame)} bytes, over fsd's limit of "
                f"{MAX_REQUEST_BYTES} bytes (max_request_bytes); use a smaller module",
            )
        sock.send(frame)
        _wait_for_reply(sock, monitor, endpoint, timeout, curve)
        try:
            reply = decode_reply(sock.recv())
        except ProtocolError as exc:
            raise CommandFailed("bad_reply", f"fsd sent a reply fsctl cannot read: {exc}") from None
    finally:
        if monitor is not None:
            sock.disable_monitor()
            monitor.close(linger=0)
        sock.close()
    if not reply.ok:
        raise CommandFailed(reply.error_code or "internal", reply.error_message or "")
    return reply.data


def _wait_for_reply(
    sock: zmq.Socket,
    monitor: zmq.Socket | None,
    endpoint: str,
    timeout: float,
    curve: ClientCurve | None,
) -> None:
    """Wait until a reply is readable; raise Unreachable on timeout or a refused key.

    With CURVE, libzmq (>= 4.3) reports fsd's refusal of the client key as a
    handshake event, so fsctl can say so at once instead of waiting out the
    timeout. A wrong server key cannot be told apart from silence: that one
    still ends in the timeout message.
    """
    if monitor is None:
        if not sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise _no_reply(endpoint, timeout, curve)
        return
    from zmq.utils.monitor import recv_monitor_message

    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _no_reply(endpoint, timeout, curve)
        ready = dict(poller.poll(int(left * 1000) + 1))
        if sock in ready:
            return
        if monitor in ready:
            event = recv_monitor_message(monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise Unreachable(
                    f"fsd at {endpoint} refused authentication (status {event['value']}): "
                    f"your client public key is not in fsd's curve_allowed_clients. Give the "
                    f".key file next to your --client-key to fsd's operator"
                )
