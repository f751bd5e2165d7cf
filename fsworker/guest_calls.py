"""Calling the guest on a batch whose inputs may have failed before the call.

Inputs that failed already (a schema error, a preset failure) are left out of
the call; the outcomes and the guest's output overrides are spread back so they
line up with the batch again. Split out of the processing loop.
"""

from __future__ import annotations

from typing import Any

from fsworker.error_kinds import Failure
from fsworker.guest import Guest
from fsworker.records import message_meta


class GuestCalls:
    """The loop's calls into its guest."""

    def __init__(self, guest: Guest) -> None:
        self._guest = guest

    def call(
        self, batch: list[Any], payloads: list[bytes | None], failures: dict[int, Failure]
    ) -> list[Any]:
        """Run the guest on the decodable payloads; outcomes line up with ``payloads``.

        ``guest.last_output_meta`` is re-indexed the same way.
        """
        guest = self._guest
        if len(failures) == len(batch):
            return [None] * len(batch)  # nothing to call
        if not failures:  # the common case: no index bookkeeping on the hot path
            metas = [message_meta(m) for m in batch] if guest.uses_message_metadata else None
            return guest.call_batch(payloads, metas)  # type: ignore[arg-type]
        index = [i for i, p in enumerate(payloads) if p is not None]
        metas = [message_meta(batch[i]) for i in index] if guest.uses_message_metadata else None
        results = guest.call_batch([payloads[i] for i in index], metas)  # type: ignore[misc]
        outcomes: list[Any] = [None] * len(payloads)
        for i, result in zip(index, results, strict=True):
            outcomes[i] = result
        if guest.last_output_meta is not None:
            spread: list[Any] = [None] * len(payloads)
            for i, meta in zip(index, guest.last_output_meta, strict=True):
                spread[i] = meta
            guest.last_output_meta = spread
        return outcomes

    def call_one(self, msg: Any, payload: bytes) -> tuple[Any, Any]:
        """The guest on one input alone: its outcome and its output meta."""
        outcome = self.call([msg], [payload], {})[0]
        metas = self._guest.last_output_meta
        return outcome, metas[0] if metas else None
