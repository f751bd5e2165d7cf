"""Every fsd setting, declared once: name, type, default and help.

The CLI's options (fsd/cli.py), the config file's keys (fsd/config.py) and the
table in docs/configuration.md are all built from SETTINGS, so a setting added
here appears everywhere at once and cannot drift between them. FsdConfig's
fields must match it (tests/unit/test_config.py checks).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One configuration key."""

    name: str
    type: type
    help: str
    default: Any = None


SETTINGS: list[Setting] = [
    Setting(
        "state_dir",
        str,
        "Registry, packages, logs, broker data. "
        "[$STATE_DIRECTORY, else ~/.local/state/function-stream]",
    ),
    Setting(
        "endpoint",
        str,
        "Control endpoint (ipc://PATH). "
        "[ipc://$RUNTIME_DIRECTORY/fsd.sock, else ipc://$XDG_RUNTIME_DIR/function-stream/fsd.sock]",
    ),
    Setting("pulsar_url", str, "Use this Pulsar cluster; without it fsd runs a standalone."),
    Setting("pulsar_admin_url", str, "Admin REST URL, for backlog in status. [from pulsar_url]"),
    Setting("pulsar_port", int, "Embedded broker: binary protocol port.", 6650),
    Setting("pulsar_web_port", int, "Embedded broker: admin HTTP port.", 8080),
    Setting("pulsar_heap", str, "Embedded broker: JVM -Xmx.", "512m"),
    Setting(
        "state_url",
        str,
        "PostgreSQL URL (postgresql://user@host:5432/db) of a state store shared by hosts; "
        "without it state is SQLite under state_dir (docs/state.md).",
    ),
    Setting("stop_timeout", float, "Seconds a worker gets to drain after SIGTERM.", 10.0),
    Setting(
        "heartbeat_timeout", float, "Seconds without a heartbeat before a worker is hung.", 10.0
    ),
    Setting("ready_timeout", float, "Seconds a worker may take to report ready.", 60.0),
    Setting(
        "stall_timeout",
        float,
        "Seconds a function's backlog may wait, not shrinking, while its replicas here take "
        "nothing; then they restart (0: off).",
        120.0,
    ),
    Setting("max_restarts", int, "Restarts within restart_window before FATAL.", 5),
    Setting("restart_window", float, "Seconds over which restarts are counted.", 60.0),
    Setting("stable_after", float, "Seconds RUNNING after which backoff starts over.", 30.0),
    Setting("backoff_base", float, "First restart delay in seconds.", 0.5),
    Setting("backoff_cap", float, "Longest restart delay in seconds.", 30.0),
    Setting("log_level", str, "debug, info, warning or error.", "info"),
    Setting(
        "default_timeout_ms",
        int,
        "Per-message time limit for functions created without --timeout-ms (0: none).",
        5000,
    ),
    Setting(
        "default_memory_limit",
        str,
        "Guest memory limit for functions created without --memory-limit (0: none).",
        "256MiB",
    ),
    Setting(
        "default_max_retries",
        int,
        "Redeliveries before the dead-letter topic, for functions created without --max-retries.",
        3,
    ),
    Setting(
        "default_retry_delay_ms",
        int,
        "Delay before a redelivery, for functions created without --retry-delay-ms.",
        1000,
    ),
    Setting(
        "autoscale_interval",
        float,
        "Seconds between backlog reads and autoscaling decisions (docs/autoscaling.md).",
        5.0,
    ),
    # metrics
    Setting("metrics_endpoint", str, "Prometheus endpoint host:port, or 'off'.", "off"),
    # security (docs/security.md)
    Setting("control_group", str, "Group owning the ipc control socket (mode 0660)."),
    Setting("curve_secret_key", str, "fsd's CURVE secret key file (for a tcp:// endpoint)."),
    Setting("curve_allowed_clients", str, "Client public key file or directory (CURVE)."),
    Setting("max_request_bytes", int, "Largest control request accepted.", 64 * 1024 * 1024),
    # cluster mode (docs/cluster.md)
    Setting("cluster", str, "Join this cluster (needs pulsar_url); without it fsd is one host."),
    Setting(
        "cluster_namespace",
        str,
        "Pulsar tenant/namespace holding the cluster's topics.",
        "public/function-stream",
    ),
    Setting("member_id", str, "This member's id in the cluster. [hostname-<state dir digest>]"),
    Setting("member_timeout", float, "Seconds a silent member counts as gone.", 10.0),
    Setting("member_heartbeat", float, "Seconds between a member's heartbeats.", 2.0),
]
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}
_COMPUTED = re.compile(r"\s*\[([^\]]+)\]$")


def settings_table() -> str:
    """The Markdown table of every setting (docs/configuration.md embeds it)."""
    rows = [
        "| key | type | default | env var | flag | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        meaning = setting.help
        computed = _COMPUTED.search(meaning)
        if setting.default is not None:
            default = f"`{json.dumps(setting.default)}`"
        elif computed:
            default = computed.group(1)
            meaning = meaning[: computed.start()]
        else:
            default = "(not set)"
        flag = "--" + setting.name.replace("_", "-")
        env = f"FS_{setting.name.upper()}"
        cells = [f"`{setting.name}`", _TYPE_NAMES[setting.type], default, f"`{env}`"]
        cells += [f"`{flag}`", meaning.replace("|", "\\|")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
