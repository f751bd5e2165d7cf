"""EmbeddedBrokerKeeper's phases, with a stand-in for the JVM process and a fake clock.

The real broker restart is covered end to end in
tests/integration/test_embedded_broker.py; this checks every path of the
state machine, including the ones a real JVM rarely takes (a start that
raises, a JVM that never gets ready).
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

from fsd.backoff import Backoff
from fsd.broker import BrokerError
from fsd.broker_keeper import BrokerPhase, EmbeddedBrokerKeeper
from tests.helpers import wait_for


class StandIn:
    """The parts of EmbeddedPulsar the keeper uses: a process that lives or not."""

    url = "pulsar://127.0.0.1:1"
    log_path = Path("/nonexistent/standalone.log")

    def __init__(self) -> None:
        self.running = True
        self.code: int | None = None
        self.starts = 0
        self.kills = 0
        self.start_error: str | None = None

    @property
    def pid(self) -> int | None:
        return 1000 + self.starts if self.running else None

    @property
    def exit_code(self) -> int | None:
        return self.code

    def alive(self) -> bool:
        return self.running

    def start(self) -> None:
        if self.start_error:
            raise BrokerError(self.start_error)
        self.starts += 1
        self.running, self.code = True, None

    def kill(self) -> None:
        self.kills += 1
        self.running, self.code = False, -9

    def die(self, code: int = -9) -> None:
        self.running, self.code = False, code


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(ready: threading.Event) -> tuple[EmbeddedBrokerKeeper, StandIn, Clock]:
    broker, clock = StandIn(), Clock()
    keeper = EmbeddedBrokerKeeper(
        broker,  # type: ignore[arg-type]
        backoff=Backoff(base=1.0, factor=2.0, cap=8.0, jitter=0.0, rng=random.Random(1)),
        ready_timeout=60.0,
        probe=lambda _b: ready.is_set(),
        clock=clock,
        wall_clock=lambda: 5000.0 + clock.now,
    )
    return keeper, broker, clock


def step_until(keeper: EmbeddedBrokerKeeper, phase: BrokerPhase) -> None:
    def reached() -> bool:
        keeper.step()
        return keeper.phase is phase

    wait_for(reached, 5, f"phase {phase}", interval=0.01)


def test_a_dead_broker_is_restarted_and_reported_until_ready():
    ready = threading.Event()
    keeper, broker, _clock = make(ready)
    keeper.step()
    assert keeper.phase is BrokerPhase.RUNNING and keeper.to_public()["down_since"] is None
    broker.die()
    keeper.step()
    public = keeper.to_public()
    assert keeper.phase is BrokerPhase.RESTARTING and broker.starts == 1
    assert public["state"] == "RESTARTING" and public["down_since"] == 5100.0
    assert public["attempt"] == 1
    ready.set()
    step_until(keeper, BrokerPhase.RUNNING)
    public = keeper.to_public()
    assert public["down_since"] is None and public["restarts"] == 1 and public["attempt"] == 0
    keeper.close()


def test_failed_starts_back_off_exponentially_and_never_raise():
    ready = threading.Event()
    keeper, broker, clock = make(ready)
    broker.die()
    broker.start_error = "port 127.0.0.1:1 is already in use"
    keeper.step()
    assert keeper.phase is BrokerPhase.BACKOFF
    assert keeper.to_public()["retry_in"] == 1.0
    assert "already in use" in keeper.to_public()["last_error"]
    clock.now += 0.5
    keeper.step()
    assert keeper.phase is BrokerPhase.BACKOFF, "no retry before the backoff ends"
    clock.now += 0.5
    keeper.step()
    assert keeper.phase is BrokerPhase.BACKOFF and keeper.attempt == 2
    assert keeper.to_public()["retry_in"] == 2.0
    # The JVM starts but exits while starting: back off again, longer.
    broker.start_error = None
    clock.now += 2.0
    keeper.step()
    assert keeper.phase is BrokerPhase.RESTARTING and keeper.attempt == 3
    broker.die(code=1)
    keeper.step()
    assert keeper.phase is BrokerPhase.BACKOFF and keeper.to_public()["retry_in"] == 4.0
    assert "exited with code 1 while starting" in keeper.last_error
    assert keeper.to_public()["down_since"] == 5100.0, "the outage began at the first death"
    clock.now += 4.0
    keeper.step()
    ready.set()
    step_until(keeper, BrokerPhase.RUNNING)
    assert keeper.restarts == 1
    keeper.close()


def test_a_broker_that_never_gets_ready_is_killed_and_retried():
    ready = threading.Event()
    keeper, broker, clock = make(ready)
    broker.die()
    keeper.step()
    assert keeper.phase is BrokerPhase.RESTARTING
    clock.now += 59.0
    keeper.step()
    assert keeper.phase is BrokerPhase.RESTARTING
    clock.now += 1.0
    keeper.step()
    assert keeper.phase is BrokerPhase.BACKOFF and broker.kills == 1
    assert "did not accept producers within 60s" in keeper.last_error
    assert keeper.ready_deadline is None, "a deadline dies with its phase"
    keeper.close()


def test_an_unexpected_error_backs_off_instead_of_stopping_fsd():
    ready = threading.Event()
    keeper, broker, _clock = make(ready)
    broker.die()

    def explode() -> None:
        raise RuntimeError("disk on fire")

    broker.start = explode  # type: ignore[method-assign]
    keeper.step()
    assert keeper.phase is BrokerPhase.BACKOFF
    assert "disk on fire" in keeper.last_error
