"""effectively-once retries: a failed message is called again before anything after it is published.

The broker keeps an output of the effectively-once producer only if its
sequence id, which follows the input's position (fsworker/records.py), is above
every one it kept before. A message handed back for a later redelivery comes
back after the newer messages' outputs were published, so its own output would
be dropped as a duplicate: it would be lost once it succeeds. So under
effectively-once the loop retries a failed message here, in its place: after
``--retry-delay-ms`` it calls the guest again on that message alone, up to
``--max-retries`` times, and only then publishes the batch in input order (a
message still failing is dead-lettered as usual). The state the failed calls
wrote was already rolled back to their savepoints by the guest classes.

The loop waits meanwhile (heartbeats announce the wait, so fsd does not take it
for a hang): strict order is what effectively-once (``--ordering strict``)
asks for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from fscommon.function_options import FunctionOptions
from fsworker.codec import SchemaError
from fsworker.commit import Counters
from fsworker.error_kinds import ErrorKind, Failure
from fsworker.guest import GuestError

log = structlog.get_logger("fsworker.loop")

# The wait between attempts is announced to fsd in slices no longer than this.
WAIT_SLICE_S = 1.0


class InPlaceRetry:
    """Retries the failed messages of one batch where they stand (effectively-once)."""

    def __init__(
        self,
        options: FunctionOptions,
        decode: Callable[[bytes], bytes] | None,
        call_one: Callable[[Any, bytes], tuple[Any, Any]],
        announce: Callable[[float], None],
        counters: Counters,
    ) -> None:
        """``call_one(msg, payload)`` -> (outcome, output meta); ``announce(seconds)`` tells
        fsd the loop is busy for that long."""
        self._limit = options.max_retries
        self._delay = options.retry_delay_ms / 1000
        self._decode = decode
        self._call_one = call_one
        self._announce = announce
        self._counters = counters

    def settle(
        self,
        batch: Sequence[Any],
        failures: dict[int, Failure],
        outcomes: list[Any],
        overrides: Sequence[Any] | None,
        attempts: list[int],
    ) -> Sequence[Any] | None:
        """Retry each failed input in order until it succeeds or its attempts are used up.

        Updates ``failures``, ``outcomes`` and ``attempts`` in place; returns the output
        overrides with the retried inputs' own.
        """
        for i, msg in enumerate(batch):
            while attempts[i] <= self._limit:
                failure = _failure(failures.get(i), outcomes[i])
                if failure is None:
                    break
                log.info(
                    "message failed; retrying it in place (effectively-once keeps the order)",
                    error_kind=failure[0],
                    error=failure[1],
                    message_id=str(msg.message_id()),
                    attempt=attempts[i],
                )
                self._counters.failed += 1
                self._counters.retried += 1
                self._wait()
                attempts[i] += 1
                failures.pop(i, None)
                outcomes[i] = None
                payload = msg.data()
                if self._decode is not None:
                    try:
                        payload = self._decode(payload)
                    except SchemaError as exc:
                        failures[i] = (ErrorKind.SCHEMA, str(exc))
                        continue
                outcomes[i], meta = self._call_one(msg, payload)
                if meta is not None or overrides is not None:
                    overrides = list(overrides) if overrides is not None else [None] * len(batch)
                    overrides[i] = meta  # type: ignore[index]
        return overrides

    def _wait(self) -> None:
        left = self._delay
        while left > 0:
            step = min(left, WAIT_SLICE_S)
            self._announce(step)
            time.sleep(step)
            left -= step


def _failure(failure: Failure | None, outcome: Any) -> Failure | None:
    if failure is not None:
        return failure
    if isinstance(outcome, GuestError):
        return (outcome.kind, str(outcome))
    return None


def has_failures(failures: dict[int, Failure], outcomes: Sequence[Any]) -> bool:
    """Whether a batch has anything to retry (a decode failure or a guest error)."""
    return bool(failures) or any(isinstance(o, GuestError) for o in outcomes)
