"""How many times a message was handed back, where the broker does not count it.

The broker counts redeliveries (``Message.redelivery_count()``) only on Shared
and Key_Shared subscriptions; on Failover (``--ordering strict``) it always
says 0, so a message that fails every time would be retried for ever instead of
dead-lettered after ``--max-retries``. On Failover the active consumer gets its
own negative acknowledgements back, so the worker counts them by message id
(in memory: a restarted worker starts over, and the attempt ledger covers the
attempts that killed the worker).
"""

from __future__ import annotations

from typing import Any


class HandedBack:
    """Retries by serialized message id, for the messages not settled yet."""

    def __init__(self) -> None:
        self._counts: dict[bytes, int] = {}

    def __bool__(self) -> bool:
        return bool(self._counts)

    def redeliveries(self, msg: Any) -> int:
        """The larger of the broker's redelivery count and ours."""
        count = msg.redelivery_count()
        if self._counts:
            return max(count, self._counts.get(msg.message_id().serialize(), 0))
        return count

    def note(self, retry: list[Any], done: list[Any]) -> None:
        """Count each message handed back for a retry; forget the ones that are done."""
        counts = self._counts
        for msg in retry:
            mid = msg.message_id().serialize()
            counts[mid] = counts.get(mid, 0) + 1
        if counts:
            for msg in done:
                counts.pop(msg.message_id().serialize(), None)
