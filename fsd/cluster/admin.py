"""Prepare a cluster's namespace through the broker's admin REST API.

What the broker does by default, and why each policy here is set (checked
against Pulsar 3.0 standalone):

- Retention 0: once no durable cursor holds a ledger, it is deleted at the
  next rollover. The registry and the package data topics have no durable
  subscription (they are read through TableViews and readers, whose cursors
  are not durable), so without retention they would lose data. The namespace
  therefore keeps everything (retention -1/-1); only the members topic, whose
  old heartbeats are worthless, gets a finite topic-level retention.
- Inactive topics are deleted after 60 s without producers or subscriptions
  (``brokerDeleteInactiveTopicsEnabled``): a cluster whose members are all
  stopped for a minute would lose its registry. The namespace turns that off.
- No compaction threshold: a compacted topic would only be compacted when
  asked. The topics read as key -> latest value get a topic-level threshold,
  so a TableView starts from a compacted snapshot instead of the whole history.
"""

from __future__ import annotations

import json
import urllib.error

from fsd.backlog import topic_path
from fsd.broker_admin import AdminError, admin_request
from fsd.cluster.naming import ClusterNames

COMPACTION_THRESHOLD_BYTES = 1024 * 1024
# Heartbeats older than this are only history; the compacted latest value stays.
MEMBERS_RETENTION_MINUTES = 60
MEMBERS_RETENTION_MB = 64

KEEP_EVERYTHING = {"retentionTimeInMinutes": -1, "retentionSizeInMB": -1}
NEVER_DELETE_INACTIVE = {
    "inactiveTopicDeleteMode": "delete_when_no_subscriptions",
    "maxInactiveDurationSeconds": 60,
    "deleteWhileInactive": False,
}


def _reason(exc: urllib.error.HTTPError) -> str:
    """The broker's own explanation of a refused call ({"reason": ...})."""
    try:
        body = exc.read()
        return str(json.loads(body).get("reason") or body.decode(errors="replace"))
    except (ValueError, AttributeError, OSError):
        return exc.reason if isinstance(exc.reason, str) else str(exc)


def _call(admin_url: str, method: str, path: str, body: object | None = None) -> bytes:
    """One call; unreachable or refused becomes an AdminError naming the call."""
    url = f"{admin_url.rstrip('/')}{path}"
    try:
        return admin_request(method, url, body, timeout=10.0)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        raise AdminError(
            f"cannot reach the Pulsar admin API at {admin_url} ({method} {path}: {exc}): "
            f"check the admin URL and that the broker is running"
        ) from None


def _refused(admin_url: str, what: str, exc: urllib.error.HTTPError) -> AdminError:
    return AdminError(
        f"the Pulsar admin API at {admin_url} refused to {what}: HTTP {exc.code} {_reason(exc)}"
    )


def ensure_namespace(admin_url: str, names: ClusterNames) -> None:
    """Create the cluster's namespace if missing and set the policies its stores rely on.

    Safe to call from every member at every start (each call sets the same values).
    Raises AdminError with one line saying what to do: the tenant is missing, the
    admin API cannot be reached, or the broker refused a call.
    """
    ns = names.tenant_namespace
    try:
        _call(admin_url, "GET", f"/admin/v2/tenants/{names.tenant}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise AdminError(
                f"Pulsar tenant {names.tenant!r} does not exist on {admin_url}: create it "
                f"(bin/pulsar-admin tenants create {names.tenant} --allowed-clusters <cluster>) "
                f"or choose a namespace in an existing tenant (e.g. 'public/function-stream')"
            ) from None
        raise _refused(admin_url, f"read tenant {names.tenant!r}", exc) from None
    try:
        _call(admin_url, "PUT", f"/admin/v2/namespaces/{ns}")
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: it exists already
            raise _refused(admin_url, f"create namespace {ns!r}", exc) from None
    _set(admin_url, f"/admin/v2/namespaces/{ns}/retention", KEEP_EVERYTHING, f"retention on {ns}")
    _set(
        admin_url,
        f"/admin/v2/namespaces/{ns}/inactiveTopicPolicies",
        NEVER_DELETE_INACTIVE,
        f"inactive-topic policy on {ns}",
    )
    for topic in names.compacted_topics:
        _ensure_topic(admin_url, topic)
        _set(
            admin_url,
            f"/admin/v2/{topic_path(topic)}/compactionThreshold",
            COMPACTION_THRESHOLD_BYTES,
            f"compaction threshold on {topic}",
        )
    _set(
        admin_url,
        f"/admin/v2/{topic_path(names.members)}/retention",
        {
            "retentionTimeInMinutes": MEMBERS_RETENTION_MINUTES,
            "retentionSizeInMB": MEMBERS_RETENTION_MB,
        },
        f"retention on {names.members}",
    )


def _ensure_topic(admin_url: str, topic: str) -> None:
    """Create a non-partitioned topic (topic-level policies need it to exist)."""
    try:
        _call(admin_url, "PUT", f"/admin/v2/{topic_path(topic)}")
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise _refused(admin_url, f"create topic {topic!r}", exc) from None


def _set(admin_url: str, path: str, value: object, what: str) -> None:
    try:
        _call(admin_url, "POST", path, value)
    except urllib.error.HTTPError as exc:
        raise _refused(admin_url, f"set {what}", exc) from None
