"""Keeps fsd's embedded Pulsar running without ever blocking fsd's main loop.

fsd's loop calls ``step()`` on every turn. When the broker's JVM is found
dead, the keeper starts a new one and returns at once; a background probe
thread says when it accepts producers. A start that fails (the JVM exits,
or it is not ready within ``ready_timeout``) is retried after an exponential
backoff, for ever: the functions and fsctl must outlive any broker outage.

Phases: RUNNING; RESTARTING (a JVM is starting, since T); BACKOFF (waiting
until T before the next start). ``to_public()`` is what ``fsctl info`` and
``fsctl status`` show.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from fsd.backoff import Backoff
from fsd.broker import BrokerError, EmbeddedPulsar, accepts_producers, port_open

log = structlog.get_logger("fsd.broker")

# Seconds between readiness probes of a starting broker.
PROBE_INTERVAL = 0.5


class BrokerPhase(enum.StrEnum):
    """Where the embedded broker is in its life as fsd sees it."""

    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    BACKOFF = "BACKOFF"


def _default_probe(broker: EmbeddedPulsar) -> bool:
    """One readiness check: the port listens and a producer can attach."""
    return port_open("127.0.0.1", broker.broker_port) and accepts_producers(broker.url)


class _ReadinessProbe:
    """A daemon thread that probes a starting broker until it is ready or cancelled."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self.ready = threading.Event()
        self._cancel = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(check,), name="fsd-broker-probe", daemon=True
        )
        self._thread.start()

    def _run(self, check: Callable[[], bool]) -> None:
        while not self._cancel.is_set():
            try:
                if check():
                    self.ready.set()
                    return
            except Exception as exc:  # a probe that breaks only means "not ready yet"
                log.debug("broker readiness probe failed", error=str(exc))
            self._cancel.wait(PROBE_INTERVAL)

    def cancel(self) -> None:
        """Stop probing (the thread ends after its current check)."""
        self._cancel.set()


class EmbeddedBrokerKeeper:
    """Watches the embedded broker and restarts it step by step from fsd's loop."""

    def __init__(
        self,
        broker: EmbeddedPulsar,
        backoff: Backoff | None = None,
        ready_timeout: float = 120.0,
        probe: Callable[[EmbeddedPulsar], bool] = _default_probe,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = broker
        self.backoff = backoff or Backoff(base=1.0, factor=2.0, cap=60.0)
        self.ready_timeout = ready_timeout
        self._probe_check = probe
        self._clock = clock
        self._wall = wall_clock
        self.phase = BrokerPhase.RUNNING
        # Wall-clock time the current outage began (None while RUNNING).
        self.down_since: float | None = None
        # Monotonic deadlines that belong to one phase each: they die with it.
        self.ready_deadline: float | None = None  # RESTARTING
        self.retry_at: float | None = None  # BACKOFF
        self.attempt = 0  # starts tried in this outage
        self.restarts = 0  # outages recovered from since fsd started
        self.last_error: str | None = None
        self._probe: _ReadinessProbe | None = None

    def step(self) -> None:
        """Advance the restart by one step; returns at once and never raises."""
        try:
            self._step()
        except Exception as exc:  # the keeper must never take fsd down
            log.exception("embedded broker keeper failed; will retry", error=str(exc))
            self._fail(f"unexpected error while restarting: {exc}")

    def _step(self) -> None:
        now = self._clock()
        if self.phase is BrokerPhase.RUNNING:
            if self.broker.alive():
                return
            self.down_since = self._wall()
            self.attempt = 0
            log.error(
                "embedded Pulsar exited; restarting it",
                exit_code=self.broker.exit_code,
                log=str(self.broker.log_path),
            )
            self._start_attempt()
        elif self.phase is BrokerPhase.RESTARTING:
            assert self._probe is not None and self.ready_deadline is not None
            if self._probe.ready.is_set():
                self._set_running()
            elif not self.broker.alive():
                self._fail(
                    f"embedded Pulsar exited with code {self.broker.exit_code} while starting; "
                    f"see {self.broker.log_path}"
                )
            elif now >= self.ready_deadline:
                self.broker.kill()
                self._fail(
                    f"embedded Pulsar did not accept producers within {self.ready_timeout:.0f}s; "
                    f"see {self.broker.log_path}"
                )
        elif self.phase is BrokerPhase.BACKOFF:
            assert self.retry_at is not None
            if now >= self.retry_at:
                self._start_attempt()

    def _start_attempt(self) -> None:
        self.attempt += 1
        self.retry_at = None
        try:
            self.broker.start()
        except (BrokerError, OSError) as exc:
            self._fail(str(exc))
            return
        self.phase = BrokerPhase.RESTARTING
        self.ready_deadline = self._clock() + self.ready_timeout
        broker, check = self.broker, self._probe_check
        self._probe = _ReadinessProbe(lambda: check(broker))
        log.info("embedded Pulsar starting", attempt=self.attempt, pid=self.broker.pid)

    def _fail(self, reason: str) -> None:
        self._cancel_probe()
        self.ready_deadline = None
        self.last_error = reason
        delay = self.backoff.delay(max(self.attempt, 1))
        self.retry_at = self._clock() + delay
        self.phase = BrokerPhase.BACKOFF
        log.error(
            f"embedded Pulsar restart failed: {reason}; retrying in {delay:.1f}s",
            attempt=self.attempt,
        )

    def _set_running(self) -> None:
        self._cancel_probe()
        outage = self._wall() - self.down_since if self.down_since is not None else None
        log.info("embedded Pulsar ready again", attempt=self.attempt, down_for_s=outage)
        self.phase = BrokerPhase.RUNNING
        self.ready_deadline = None
        self.retry_at = None
        self.down_since = None
        self.attempt = 0
        self.restarts += 1

    def _cancel_probe(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    def close(self) -> None:
        """Stop probing (fsd is shutting down; the broker itself is stopped by its owner)."""
        self._cancel_probe()

    def to_public(self) -> dict[str, Any]:
        """The broker's phase for fsctl: state, since when, attempt, next retry, last error."""
        retry_in = None
        if self.retry_at is not None:
            retry_in = max(0.0, self.retry_at - self._clock())
        return {
            "state": str(self.phase),
            "pid": self.broker.pid,
            "url": self.broker.url,
            "down_since": self.down_since,
            "attempt": self.attempt,
            "retry_in": retry_in,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }
