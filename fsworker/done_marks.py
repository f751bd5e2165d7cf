"""Exactly-once state: each batch's processed message ids are committed with its state.

The loop commits a batch's state after its outputs are confirmed and before
its inputs are acknowledged. A worker that dies between that commit and the
acknowledgements reaching the broker (they are grouped for ~100 ms) would have
the batch redelivered and its state changes applied twice. So a batch that
wrote state also writes a mark per input message in the same transaction, and
a message that arrives with a mark is acknowledged without being processed
again: its outputs were confirmed and its state committed.

Marks are ordinary keys under a reserved prefix (fsctl state hides them), so
both backends keep them with no schema of their own. Until a function has
written state once, nothing is looked up; after that each batch costs one
lookup of its ids (one query). A worker drops the marks it wrote after
MARK_TTL; the marks of a worker that died stay (a few per crash).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from fsworker.state_store import RESERVED_PREFIX, StateTransaction

MARK_PREFIX = RESERVED_PREFIX + b"done\x00"
ENABLED_KEY = RESERVED_PREFIX + b"exactly-once-state"
# Longer than any redelivery of a committed batch (those follow the crash at once).
MARK_TTL = 600.0


class DoneMarks:
    """Looks up and writes the marks of one replica's batches."""

    def __init__(self, tx: StateTransaction, clock: Callable[[], float] = time.monotonic):
        self._tx = tx
        self._clock = clock
        self._enabled: bool | None = None  # None: not read from the store yet
        self._written: deque[tuple[float, list[bytes]]] = deque()

    def in_use(self) -> bool:
        """Whether the function has written state with marks (else nothing to look up).

        Asked before the ids of a batch are even serialized: most functions never
        write state, and an id costs about a microsecond to get from the client.
        """
        if self._enabled is None:
            self._enabled = self._tx.store.get(ENABLED_KEY) is not None
        return self._enabled

    def already_done(self, mids: list[bytes]) -> set[bytes]:
        """The ids among ``mids`` whose batch committed its state (nothing to redo)."""
        if not self.in_use() or not mids:
            return set()
        keys = [MARK_PREFIX + mid for mid in mids]
        found = self._tx.store.present(keys)
        return {mid for mid, key in zip(mids, keys, strict=True) if key in found}

    def mark(self, mids: list[bytes]) -> None:
        """Add the marks to the batch's transaction, if the batch wrote state."""
        tx = self._tx
        if not tx.puts and not tx.adds:
            return  # nothing of this batch would be applied twice
        now = self._clock()
        keys = [MARK_PREFIX + mid for mid in mids]
        for key in keys:
            tx.puts[key] = b"1"
        if not self._enabled:
            tx.puts[ENABLED_KEY] = b"1"
            self._enabled = True
        while self._written and now - self._written[0][0] > MARK_TTL:
            for old in self._written.popleft()[1]:
                tx.puts.setdefault(old, None)  # dropped in the same commit
        self._written.append((now, keys))
