"""fsd's effective configuration: defaults, a TOML file, environment variables and flags.

The settings themselves (type, default, help) are declared once in
fsd/settings.py; this module checks a set of values against them and derives
what the daemon needs (paths, endpoints, policies). Precedence, highest first: flag,
environment variable (FS_<KEY>), config file, default. The file's keys are
the option names with '_' for '-'. The file is --config/FS_CONFIG, else
/etc/function-stream/fsd.toml when it exists.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fscommon.function_options import FunctionOptions, OptionError, parse_size
from fscommon.paths import APP, default_control_endpoint, default_runtime_dir, default_state_dir
from fsd.backoff import Backoff
from fsd.restart_policy import RestartPolicy
from fsd.settings import SETTINGS_BY_NAME
from fsd.supervisor import SupervisionPolicy


class ConfigError(ValueError):
    """A bad config file or value; the message names the key."""


@dataclass
class FsdConfig:
    """The effective configuration."""

    state_dir: Path
    endpoint: str
    pulsar_url: str | None = None  # None: run the embedded standalone
    pulsar_admin_url: str | None = None
    pulsar_port: int = 6650
    pulsar_web_port: int = 8080
    pulsar_heap: str = "512m"
    state_url: str | None = None  # None: SQLite per function under state_dir
    stop_timeout: float = 10.0
    heartbeat_timeout: float = 10.0
    ready_timeout: float = 60.0
    stall_timeout: float = 120.0
    max_restarts: int = 5
    restart_window: float = 60.0
    stable_after: float = 30.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    log_level: str = "info"
    default_timeout_ms: int = 5000
    default_memory_limit: str = "256MiB"
    default_max_retries: int = 3
    default_retry_delay_ms: int = 1000
    autoscale_interval: float = 5.0
    # metrics
    metrics_endpoint: str = "off"
    # security
    control_group: str | None = None
    curve_secret_key: str | None = None
    curve_allowed_clients: str | None = None
    max_request_bytes: int = 64 * 1024 * 1024
    # cluster
    cluster: str | None = None
    cluster_namespace: str = "public/function-stream"
    member_id: str | None = None
    member_timeout: float = 10.0
    member_heartbeat: float = 2.0

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> FsdConfig:
        """Build from option values (None means 'not given': use the default)."""
        given = {k: v for k, v in values.items() if v is not None}
        given["state_dir"] = Path(given.get("state_dir") or default_state_dir()).expanduser()
        given.setdefault("endpoint", default_control_endpoint())
        config = cls(**given)
        config.validate()
        return config

    def validate(self) -> None:
        """Check ranges; raise ConfigError naming the key."""
        for name in (
            "stop_timeout",
            "heartbeat_timeout",
            "ready_timeout",
            "restart_window",
            "autoscale_interval",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.stall_timeout < 0:
            raise ConfigError(f"stall_timeout must be >= 0 (0: off), got {self.stall_timeout}")
        if self.max_restarts < 0:
            raise ConfigError(f"max_restarts must be >= 0, got {self.max_restarts}")
        if self.stable_after < 0:
            raise ConfigError(f"stable_after must be >= 0, got {self.stable_after}")
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise ConfigError(
                f"backoff_base must be > 0 and <= backoff_cap, got backoff_base="
                f"{self.backoff_base} and backoff_cap={self.backoff_cap}"
            )
        if self.pulsar_url and not self.pulsar_url.startswith(("pulsar://", "pulsar+ssl://")):
            raise ConfigError(f"pulsar_url must start with pulsar:// , got {self.pulsar_url!r}")
        if self.pulsar_admin_url and not self.pulsar_admin_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"pulsar_admin_url must start with http:// or https://, "
                f"got {self.pulsar_admin_url!r}"
            )
        if self.state_url and not self.state_url.startswith(("postgresql://", "postgres://")):
            # Never echo the whole URL: it may hold a password.
            scheme = self.state_url.split(":", 1)[0]
            raise ConfigError(
                "state_url must be a PostgreSQL URL such as postgresql://user@host:5432/db, "
                f"got a URL starting with {scheme!r}"
            )
        if not self.endpoint.startswith(("ipc://", "tcp://")):
            raise ConfigError(
                f"endpoint must be ipc://PATH or tcp://HOST:PORT, got {self.endpoint!r}"
            )
        for name in ("pulsar_port", "pulsar_web_port"):
            if not 1 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{name} must be a TCP port (1-65535), got {getattr(self, name)}")
        if not re.fullmatch(r"[1-9][0-9]*[kKmMgG]?", self.pulsar_heap):
            raise ConfigError(
                f"pulsar_heap must be a JVM size such as 512m or 2g, got {self.pulsar_heap!r}"
            )
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(
                f"log_level must be debug, info, warning or error: {self.log_level!r}"
            )
        # metrics
        from fsd.metrics import parse_endpoint

        try:
            parse_endpoint(self.metrics_endpoint)
        except ValueError as exc:
            raise ConfigError(f"metrics_endpoint: {exc}") from None
        self._validate_cluster()
        self.function_defaults()  # raises ConfigError naming the default_* key
        self.curve_server()  # security settings: raises ConfigError naming the setting

    def _validate_cluster(self) -> None:
        if self.cluster is None:
            return
        from fsd.function_spec import NAME_RE

        if not NAME_RE.fullmatch(self.cluster):
            raise ConfigError(
                f"cluster must be 1-64 letters, digits, '_', '.' or '-', got {self.cluster!r}"
            )
        if not self.pulsar_url:
            raise ConfigError(
                f"cluster {self.cluster!r} needs pulsar_url: every member must use the same "
                f"Pulsar cluster (--pulsar-url pulsar://HOST:6650)"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", self.cluster_namespace):
            raise ConfigError(
                f"cluster_namespace must be TENANT/NAMESPACE, got {self.cluster_namespace!r}"
            )
        if self.member_id is not None and not NAME_RE.fullmatch(self.member_id):
            raise ConfigError(
                f"member_id must be 1-64 letters, digits, '_', '.' or '-', got {self.member_id!r}"
            )
        if not 0 < self.member_heartbeat < self.member_timeout:
            raise ConfigError(
                f"member_heartbeat must be > 0 and < member_timeout, got member_heartbeat="
                f"{self.member_heartbeat} and member_timeout={self.member_timeout}"
            )

    def effective_member_id(self) -> str:
        """member_id, else this host's name and a digest of the state dir (unique per fsd)."""
        if self.member_id:
            return self.member_id
        import hashlib
        import socket

        host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:50] or "host"
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
        return f"{host}-{digest}"

    def function_defaults(self) -> dict[str, Any]:
        """The options fsd fills in at create for those the request leaves out."""
        try:
            memory = parse_size(self.default_memory_limit)
        except OptionError:
            raise ConfigError(
                f"default_memory_limit must be a size such as 256MiB, 64M or 65536 (0: none), "
                f"got {self.default_memory_limit!r}"
            ) from None
        defaults = {
            "timeout_ms": self.default_timeout_ms or None,
            "memory_limit": memory or None,
            "max_retries": self.default_max_retries,
            "retry_delay_ms": self.default_retry_delay_ms,
        }
        try:
            FunctionOptions(**defaults).validate()
        except OptionError as exc:
            # The option's message names e.g. 'timeout-ms'; say which key it came from.
            option = str(exc).split(" ", 1)[0]
            raise ConfigError(f"default_{option.replace('-', '_')}: {exc}") from None
        return defaults

    def curve_server(self) -> Any:
        """Check the security settings; fsd's CurveServer keys, or None without CURVE."""
        from fsd.security_config import check_security

        return check_security(self)

    def as_dict(self) -> dict[str, Any]:
        """For --check-config: every setting, paths as strings."""
        return {
            f.name: str(v) if isinstance(v := getattr(self, f.name), Path) else v
            for f in fields(self)
        }

    def to_json(self) -> str:
        """The effective configuration as JSON (--check-config --json)."""
        return json.dumps(self.as_dict(), indent=2)

    def to_toml(self) -> str:
        """The effective configuration as a config file (--check-config).

        Unset settings become comments, since TOML has no null.
        """
        lines = []
        for key, value in self.as_dict().items():
            if value is None:
                lines.append(f"# {key} is not set")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines)

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

    @property
    def transitions_endpoint(self) -> str:
        """Where fsd publishes replica state changes (fsctl events)."""
        return f"ipc://{self.runtime_dir / 'fsd-transitions.sock'}"

    def supervision_policy(self) -> SupervisionPolicy:
        """The supervisor's timeouts and restart limits."""
        return SupervisionPolicy(
            stop_timeout=self.stop_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            ready_timeout=self.ready_timeout,
            restart=RestartPolicy(
                max_restarts=self.max_restarts,
                window=self.restart_window,
                stable_after=self.stable_after,
                backoff=Backoff(base=self.backoff_base, cap=self.backoff_cap),
            ),
        )

    def admin_url(self, embedded_web_port: int | None) -> str | None:
        """The broker's admin REST URL: given, the embedded one, or guessed from pulsar_url."""
        if self.pulsar_admin_url:
            return self.pulsar_admin_url
        if embedded_web_port is not None:
            return f"http://127.0.0.1:{embedded_web_port}"
        if self.pulsar_url and self.pulsar_url.startswith("pulsar://"):
            host = self.pulsar_url[len("pulsar://") :].split(",")[0].rsplit(":", 1)[0]
            return f"http://{host}:8080"
        return None


SYSTEM_CONFIG = Path("/etc") / APP / "fsd.toml"


def default_config_path() -> Path:
    """$CONFIGURATION_DIRECTORY/fsd.toml under systemd, else /etc/function-stream/fsd.toml."""
    if os.environ.get("CONFIGURATION_DIRECTORY"):
        return Path(os.environ["CONFIGURATION_DIRECTORY"].split(":")[0]) / "fsd.toml"
    return SYSTEM_CONFIG


def read_config_file(path: Path) -> dict[str, Any]:
    """Read and check a TOML config file; unknown keys and bad types are errors."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key, value in raw.items():
        setting = SETTINGS_BY_NAME.get(key)
        if setting is None:
            raise ConfigError(
                f"unknown key '{key}' in {path}; known keys: {', '.join(sorted(SETTINGS_BY_NAME))}"
            )
        allowed = (int, float) if setting.type is float else (setting.type,)
        if not isinstance(value, allowed) or isinstance(value, bool):
            raise ConfigError(
                f"key '{key}' in {path} must be a {setting.type.__name__}, got {value!r}"
            )
    return raw
