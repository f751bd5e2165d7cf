"""fsd's configuration: defaults, a TOML file, environment variables and flags.

Precedence (highest first): command-line flag, environment variable, config
file, default.  The file uses the flags' names with '_' for '-'.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fscommon.paths import default_control_endpoint, default_runtime_dir, default_state_dir

# Keys accepted in the config file, with the type each must have.
FILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "state_dir": str,
    "endpoint": str,
    "pulsar_url": str,
    "pulsar_port": int,
    "pulsar_web_port": int,
    "pulsar_heap": str,
    "stop_timeout": (int, float),
    "log_level": str,
}


class ConfigError(ValueError):
    """A bad config file or value; the message names the key."""


@dataclass
class FsdConfig:
    """The effective configuration."""

    state_dir: Path
    endpoint: str
    pulsar_url: str | None = None  # None: run the embedded standalone
    pulsar_port: int = 6650
    pulsar_web_port: int = 8080
    pulsar_heap: str = "512m"
    stop_timeout: float = 10.0
    log_level: str = "info"

    @property
    def runtime_dir(self) -> Path:
        """Where fsd puts its sockets (next to the control socket for ipc endpoints)."""
        if self.endpoint.startswith("ipc://"):
            return Path(self.endpoint[len("ipc://") :]).parent
        return default_runtime_dir()

    @property
    def events_endpoint(self) -> str:
        """Where workers push ready/heartbeat events."""
        return f"ipc://{self.runtime_dir / 'fsd-events.sock'}"


def read_config_file(path: Path) -> dict[str, Any]:
    """Read and check a TOML config file; unknown keys and bad types are errors."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key, value in raw.items():
        if key not in FILE_KEYS:
            raise ConfigError(
                f"unknown key '{key}' in {path}; known keys: {', '.join(sorted(FILE_KEYS))}"
            )
        want = FILE_KEYS[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise ConfigError(f"key '{key}' in {path} has a bad value {value!r}")
    return raw


def defaults() -> dict[str, Any]:
    """Default values, for the CLI."""
    return {"state_dir": str(default_state_dir()), "endpoint": default_control_endpoint()}
