"""Subscription backlog per function, read from the broker's admin REST API.

A side thread polls, so a slow or absent admin endpoint never delays fsd's
main loop; status shows the last figure it got, with its age. The autoscaler
(fsd/autoscaler.py) reads each sample with the time it was taken, and the
partition count of each input topic (a partitioned topic's backlog is summed
over its partitions, from partitioned-stats).
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
PARTITIONS_MAX_AGE = 60.0  # seconds a topic's partition count is trusted


def topic_path(topic: str) -> str:
    """'persistent/tenant/ns/topic' for the admin API; short names live in public/default."""
    if "://" in topic:
        domain, rest = topic.split("://", 1)
    else:
        domain, rest = "persistent", f"public/default/{topic}"
    quoted = "/".join(urllib.parse.quote(part, safe="") for part in rest.split("/"))
    return f"{domain}/{quoted}"


def stats_url(admin_url: str, topic: str, partitioned: bool = False) -> str:
    """The admin URL of a topic's stats (summed over partitions when ``partitioned``)."""
    kind = "partitioned-stats" if partitioned else "stats"
    return f"{admin_url.rstrip('/')}/admin/v2/{topic_path(topic)}/{kind}"


def partitions_url(admin_url: str, topic: str) -> str:
    """The admin URL of a topic's partition count (0: not partitioned)."""
    return f"{admin_url.rstrip('/')}/admin/v2/{topic_path(topic)}/partitions"


def backlog_of(stats: dict, subscription: str) -> int | None:
    """Messages waiting in the subscription, from a topic-stats document.

    The broker's msgBacklog counts entries, and a batching producer writes
    hundreds of messages per entry; so the backlog's bytes are also divided
    by the topic's average message size, and the larger figure wins (without
    batching the two agree).
    """
    sub = (stats.get("subscriptions") or {}).get(subscription)
    if not isinstance(sub, dict) or not _count(sub.get("msgBacklog")):
        return None
    entries = sub["msgBacklog"]
    size, messages, nbytes = (
        sub.get("backlogSize"),
        stats.get("msgInCounter"),
        stats.get("bytesInCounter"),
    )
    if not (_count(size) and _count(messages) and _count(nbytes)) or not messages or not nbytes:
        return entries
    return max(entries, round(size * messages / nbytes))


def delayed_of(stats: dict, subscription: str) -> int:
    """Messages of the subscription held back by delayed delivery (not dispatchable yet)."""
    sub = (stats.get("subscriptions") or {}).get(subscription)
    delayed = sub.get("msgDelayed") if isinstance(sub, dict) else None
    return delayed if _count(delayed) else 0


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class BacklogPoller:
    """Polls topic stats every ``interval`` seconds for the current targets."""

    def __init__(self, admin_url: str, interval: float = 5.0) -> None:
        self.admin_url = admin_url
        self.interval = interval
        self._targets: list[Target] = []
        self.backlog: dict[str, tuple[int | None, float]] = {}  # function -> (value, when)
        self._partitions: dict[str, tuple[int, float]] = {}  # topic -> (count, when)
        self._delayed: dict[str, int] = {}  # function -> delayed-delivery messages, last poll
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
        sample = self.sample(function)
        return sample[0] if sample is not None else None

    def sample(self, function: str) -> tuple[int | None, float] | None:
        """(backlog, monotonic time it was read) of the last poll, if recent."""
        value, when = self.backlog.get(function, (None, 0.0))
        return (value, when) if time.monotonic() - when < 4 * self.interval else None

    def delayed(self, function: str) -> int:
        """Messages of the last poll's backlog that wait for their delayed delivery."""
        return self._delayed.get(function, 0)

    def partitions(self, topic: str) -> int | None:
        """The topic's partition count (0: not partitioned), once a poll has read it."""
        known = self._partitions.get(topic)
        return known[0] if known is not None else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for function, topics, subscription in list(self._targets):
                # No topics (an --input-pattern function): its backlog is not known.
                total: int | None = 0 if topics else None
                delayed = 0
                for topic in topics:
                    part, held = self._fetch(topic, subscription)
                    total = None if part is None or total is None else total + part
                    delayed += held
                self._delayed[function] = delayed
                self.backlog[function] = (total, time.monotonic())

    def _fetch(self, topic: str, subscription: str) -> tuple[int | None, int]:
        partitioned = (self._partition_count(topic) or 0) > 0
        stats = self._get_json(stats_url(self.admin_url, topic, partitioned))
        if not isinstance(stats, dict):
            return None, 0
        return backlog_of(stats, subscription), delayed_of(stats, subscription)

    def _partition_count(self, topic: str) -> int | None:
        """Read at most once a minute: topics are rarely repartitioned."""
        known = self._partitions.get(topic)
        if known is not None and time.monotonic() - known[1] < PARTITIONS_MAX_AGE:
            return known[0]
        meta = self._get_json(partitions_url(self.admin_url, topic))
        count = meta.get("partitions") if isinstance(meta, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return known[0] if known is not None else None
        self._partitions[topic] = (count, time.monotonic())
        return count

    def _get_json(self, url: str) -> object:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None
