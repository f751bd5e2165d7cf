"""Checks of fsd's security settings (the ``# security`` block of fsd/config.py).

Kept apart from config.py so the rules for the control plane live next to
each other: which endpoints are allowed, which need CURVE, the key files, the
control group and the request size limit. Every error names the setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fscommon.curve_keys import KeyFileError, load_allowed_clients, read_secret_key
from fscommon.protocol import MAX_REQUEST_BYTES
from fsd.control_access import (
    ControlEndpointError,
    CurveServer,
    group_id,
    refuse_tcp_without_curve,
)

if TYPE_CHECKING:
    from fsd.config import FsdConfig

MIN_REQUEST_BYTES = 64 * 1024  # a create request with a tiny module and options
# The protocol's own ceiling (fscommon.protocol): the setting can only lower it.
MAX_REQUEST_BYTES_SETTING = MAX_REQUEST_BYTES


def check_security(config: FsdConfig) -> CurveServer | None:
    """Validate the security settings; return fsd's CURVE keys, or None when CURVE is off."""
    from fsd.config import ConfigError

    endpoint = config.endpoint
    if not endpoint.startswith(("ipc://", "tcp://")):
        raise ConfigError(f"endpoint must be ipc://PATH or tcp://HOST:PORT, got {endpoint!r}")
    if not MIN_REQUEST_BYTES <= config.max_request_bytes <= MAX_REQUEST_BYTES_SETTING:
        raise ConfigError(
            f"max_request_bytes must be from {MIN_REQUEST_BYTES} to {MAX_REQUEST_BYTES_SETTING}, "
            f"got {config.max_request_bytes}"
        )
    if config.control_group:
        try:
            group_id(config.control_group)
        except ControlEndpointError as exc:
            raise ConfigError(str(exc)) from None
    secret, allowed = config.curve_secret_key, config.curve_allowed_clients
    if not secret and not allowed:
        if endpoint.startswith("tcp://"):
            raise ConfigError(refuse_tcp_without_curve(endpoint))
        return None
    if not secret or not allowed:
        missing = "curve_secret_key" if not secret else "curve_allowed_clients"
        raise ConfigError(
            f"CURVE needs both curve_secret_key and curve_allowed_clients; {missing} is not set"
        )
    try:
        public_key, secret_key = read_secret_key(Path(secret), "curve_secret_key")
        load_allowed_clients(Path(allowed))
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    return CurveServer(public_key, secret_key, Path(allowed))
