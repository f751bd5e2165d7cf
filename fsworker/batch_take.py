"""How the processing loop takes a batch from its consumer: message by message, or whole.

At low rates a batch is what is queued: one blocking ``receive`` for the first
message, then ``receive(0)`` until the queue is empty or the batch is full, so a
lone message never waits. Under load (the last batch was full) the next one is
taken with a single ``batch_receive()`` call, about 0.6 us of CPU per message
less (docs/performance.md); its policy (fsworker/pulsar_io.py) returns at once
with a full batch, else after 1 ms with what there is, and then the taker goes
back to single receives, so an idle replica blocks instead of polling every
millisecond.
"""

from __future__ import annotations

from typing import Any

import pulsar


class BatchTaker:
    """Takes batches of up to ``max_batch`` from ``consumer``.

    ``whole_size``: how many messages one ``batch_receive()`` returns at most
    (0, or a consumer without ``batch_receive``: always message by message).
    """

    def __init__(self, consumer: Any, max_batch: int, whole_size: int) -> None:
        self._receive = consumer.receive
        self._take_whole = getattr(consumer, "batch_receive", None) if whole_size > 0 else None
        self._whole_size = whole_size
        self._max_batch = max_batch
        self.loaded = False  # the last batch was full: the queue is likely full too
        self.whole_takes = 0  # batches taken with one batch_receive() call

    def take(self, timeout_ms: int) -> list[Any]:
        """The next batch; empty when nothing arrived within ``timeout_ms``."""
        if self.loaded and self._take_whole is not None:
            batch = list(self._take_whole())
            self.whole_takes += 1
            self.loaded = len(batch) >= self._whole_size
            return batch
        receive = self._receive
        try:
            first = receive(timeout_ms)
        except pulsar.Timeout:
            return []
        batch = [first]
        limit = self._max_batch
        while len(batch) < limit:
            try:
                batch.append(receive(0))
            except pulsar.Timeout:
                break
        self.loaded = self._take_whole is not None and len(batch) >= self._whole_size
        return batch
