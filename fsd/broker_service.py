"""`fsd --broker-only`: the Pulsar standalone as a service of its own (fs-pulsar.service).

The same broker fsd embeds (fsd/broker.py: same data directory, ports, heap
and configuration), run apart from fsd so an fsd restart leaves it alone.
READY=1 once it accepts producers, WATCHDOG=1 while the JVM lives, STOPPING=1
on SIGTERM. Exits 0 after a requested stop, 1 if the JVM died by itself (so
Restart=on-failure brings it back).
"""

from __future__ import annotations

import signal
import threading

import structlog

from fsd.broker import EmbeddedPulsar
from fsd.config import FsdConfig
from fsd.sd_notify import Notifier

log = structlog.get_logger("fsd.broker_service")

# How often the loop checks on the JVM (and pets the watchdog when it is due).
CHECK_INTERVAL = 1.0


def run_broker(config: FsdConfig) -> int:
    """Start the standalone, wait for SIGTERM/SIGINT or its death, stop it; the exit code."""
    notifier = Notifier.from_environment()
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    broker = EmbeddedPulsar(
        data_dir=config.state_dir / "pulsar",
        broker_port=config.pulsar_port,
        web_port=config.pulsar_web_port,
        heap=config.pulsar_heap,
    )
    notifier.status("starting the Pulsar standalone")
    try:
        broker.start()
        broker.wait_ready()
    except BaseException:
        broker.stop()
        raise
    log.info("Pulsar standalone ready", url=broker.url, admin_url=broker.admin_url)
    notifier.ready(f"serving {broker.url} (admin {broker.admin_url})")

    died = False
    while not stop.wait(CHECK_INTERVAL):
        if not broker.alive():
            log.error("the Pulsar standalone exited by itself", log=str(broker.log_path))
            died = True
            break
        notifier.pet_watchdog()

    notifier.stopping("stopping the Pulsar standalone")
    broker.stop()
    log.info("Pulsar standalone stopped")
    return 1 if died else 0
