"""Fixtures: one real Apache Pulsar standalone per test session, fsd per test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Fsd, free_port


@pytest.fixture(scope="session")
def pulsar_url() -> Iterator[str]:
    """A real broker: FS_TEST_PULSAR_URL if given, else a standalone started for the session.

    Sets FS_TEST_PULSAR_ADMIN_URL so every fsd the tests start can read backlogs.
    """
    if os.environ.get("FS_TEST_PULSAR_URL"):
        os.environ.setdefault("FS_TEST_PULSAR_ADMIN_URL", "http://127.0.0.1:8080")
        yield os.environ["FS_TEST_PULSAR_URL"]
        return
    from fsd.broker import EmbeddedPulsar

    data = Path(tempfile.mkdtemp(prefix="fs-test-pulsar-"))
    broker = EmbeddedPulsar(data_dir=data, broker_port=free_port(), web_port=free_port())
    broker.start()
    try:
        broker.wait_ready(timeout=180)
    except Exception:
        broker.stop()
        raise
    os.environ["FS_TEST_PULSAR_ADMIN_URL"] = broker.admin_url
    yield broker.url
    broker.stop()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short temp dir (ipc socket paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fs-", dir="/tmp"))
    yield path


@pytest.fixture
def fsd(workdir: Path, pulsar_url: str) -> Iterator[Fsd]:
    """A running fsd using the session broker; stopped (and checked) after the test."""
    daemon = Fsd(workdir, pulsar_url).start()
    yield daemon
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.stop()


# A real PostgreSQL for the state-store tests (tests/postgres.py).
from tests.postgres import postgres_url  # noqa: E402, F401
