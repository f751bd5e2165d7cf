"""Subscription backlog per function, read from the broker's admin REST API.

A side thread polls, so a slow or absent admin endpoint never delays fsd's
main loop; status shows the last figure it got, with its age.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request

import structlog

log = structlog.get_logger("fsd.backlog")

Target = tuple[str, tuple[str, ...], str]  # function, input topics, subscription


def topic_path(topic: str) -> str:
    """'persistent/tenant/ns/topic' for the admin API; short names live in public/default."""
    if "://" in topic:
        domain, rest = topic.split("://", 1)
    else:
        domain, rest = "persistent", f"public/default/{topic}"
    quoted = "/".join(urllib.parse.quote(part, safe="") for part in rest.split("/"))
    return f"{domain}/{quoted}"


def stats_url(admin_url: str, topic: str) -> str:
    """The admin URL of a topic's stats."""
    return f"{admin_url.rstrip('/')}/admin/v2/{topic_path(topic)}/stats"


def backlog_of(stats: dict, subscription: str) -> int | None:
    """The subscription's msgBacklog in a topic-stats document."""
    sub = (stats.get("subscriptions") or {}).get(subscription)
    if not isinstance(sub, dict) or not isinstance(sub.get("msgBacklog"), int):
        return None
    return sub["msgBacklog"]


class BacklogPoller:
    """Polls topic stats every ``interval`` seconds for the current targets."""

    def __init__(self, admin_url: str, interval: float = 5.0) -> None:
        self.admin_url = admin_url
        self.interval = interval
        self._targets: list[Target] = []
        self.backlog: dict[str, tuple[int | None, float]] = {}  # function -> (value, when)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog-poller", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (does not wait for an HTTP call in flight)."""
        self._stop.set()

    def set_targets(self, targets: list[Target]) -> None:
        """Replace what to poll (called from the main loop; a list swap is atomic)."""
        self._targets = targets

    def get(self, function: str) -> int | None:
        """The last backlog seen for a function, if recent."""
        value, when = self.backlog.get(function, (None, 0.0))
        return value if time.monotonic() - when < 4 * self.interval else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for function, topics, subscription in list(self._targets):
                total: int | None = 0
                for topic in topics:
                    part = self._fetch(topic, subscription)
                    total = None if part is None or total is None else total + part
                self.backlog[function] = (total, time.monotonic())

    def _fetch(self, topic: str, subscription: str) -> int | None:
        try:
            with urllib.request.urlopen(stats_url(self.admin_url, topic), timeout=2) as resp:
                return backlog_of(json.loads(resp.read()), subscription)
        except (OSError, ValueError):
            return None
