"""fsctl produce/consume against a broker that is not there: one line, with what to do."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from fscommon.exitcodes import CtlExit
from fsctl.cli import main as fsctl


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_produce_to_an_unreachable_broker_says_what_to_check():
    url = f"pulsar://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(fsctl, ["produce", "-n", "t", "-c", "x", "--pulsar-url", url])
    assert result.exit_code == CtlExit.FAILED, result.output
    assert f"cannot produce to 't' at {url}" in result.output
    assert "check that the broker runs and is ready" in result.output
    assert "--pulsar-url" in result.output
