"""The few Pulsar admin REST calls fsd makes (stdlib HTTP, short timeouts)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from fsd.backlog import topic_path


class AdminError(Exception):
    """The admin API refused or could not be reached; the message says which call."""


def admin_request(method: str, url: str, body: object | None = None, timeout: float = 5.0) -> bytes:
    """One admin REST call with an optional JSON body; the response body (raises HTTPError)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def enable_deduplication(admin_url: str, topic: str, timeout: float = 30.0) -> None:
    """Turn on broker-side deduplication for one topic and wait until it is in force."""
    base = f"{admin_url.rstrip('/')}/admin/v2/{topic_path(topic)}"
    try:
        try:
            admin_request("PUT", base)  # create the topic so it can carry a policy
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409: it exists already
                raise
        admin_request("POST", f"{base}/deduplicationEnabled", True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if json.loads(admin_request("GET", f"{base}/deduplicationEnabled") or b"null") is True:
                return
            time.sleep(0.2)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AdminError(
            f"cannot enable deduplication on '{topic}' through {admin_url}: {exc}"
        ) from None
    raise AdminError(f"deduplication on '{topic}' was not in force after {timeout:.0f}s")
