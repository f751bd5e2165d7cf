"""Who may talk to fsd: the ipc socket's mode and group, one fsd per endpoint, CURVE over TCP."""

from __future__ import annotations

import grp
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, Fsd, free_port, wait_for

pytestmark = pytest.mark.integration


def _other_group() -> grp.struct_group:
    """An existing group that is not fsd's own primary group."""
    for group in grp.getgrall():
        if group.gr_gid != os.getgid():
            return group
    pytest.skip("no second group on this machine")


def _fsd_cmd(workdir: Path, pulsar_url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "fsd", "--state-dir", str(workdir / "state"), "--log-json",
        "--pulsar-url", pulsar_url, *extra,
    ]  # fmt: skip


def _run_fsd(workdir: Path, pulsar_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run an fsd that is expected to refuse to start."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_RUNTIME_DIR": str(workdir)}
    return subprocess.run(
        _fsd_cmd(workdir, pulsar_url, *extra),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=workdir,
    )


def test_ipc_socket_is_0660_and_owned_by_control_group(workdir, pulsar_url):
    group = _other_group()
    daemon = Fsd(workdir, pulsar_url, extra=["--control-group", group.gr_name]).start()
    try:
        for name in ("fsd.sock", "fsd-transitions.sock"):
            info = (workdir / name).stat()
            assert stat.S_ISSOCK(info.st_mode)
            assert stat.S_IMODE(info.st_mode) == 0o660, (name, oct(info.st_mode))
            assert info.st_gid == group.gr_gid, (name, info.st_gid, group)
        assert daemon.ctl("ping").returncode == 0
    finally:
        daemon.stop()


def test_unknown_control_group_is_refused(workdir, pulsar_url):
    result = _run_fsd(
        workdir, pulsar_url, "--endpoint", f"ipc://{workdir}/fsd.sock", "--control-group", "nogrp-x"
    )
    assert result.returncode == 1
    assert "control_group 'nogrp-x' does not exist" in result.stderr, result.stderr
    assert not (workdir / "fsd.sock").exists()


def test_second_fsd_on_the_same_endpoint_is_refused(fsd: Fsd, workdir):
    (workdir / "second").mkdir()
    result = _run_fsd(workdir / "second", fsd.pulsar_url, "--endpoint", fsd.endpoint)
    assert result.returncode == 1, result.stderr
    assert f"another fsd is already running at {fsd.endpoint}" in result.stderr
    assert fsd.ctl("ping").returncode == 0, "the first fsd must keep its socket"
    assert (workdir / "fsd.sock").exists()


def test_stale_socket_of_a_killed_fsd_is_taken_over(workdir, pulsar_url):
    first = Fsd(workdir, pulsar_url).start()
    first.kill()
    assert (workdir / "fsd.sock").exists(), "SIGKILL leaves the socket file behind"
    second = Fsd(workdir, pulsar_url).start()
    try:
        assert second.ctl("ping").returncode == 0
    finally:
        second.stop()


# --- CURVE over TCP ----------------------------------------------------------------------------


@pytest.fixture
def keys(workdir: Path) -> Path:
    """fsd's key pair, one allowed client (alice) and one unknown client (mallory)."""
    out = workdir / "keys"
    for args in (
        ["--out", str(out), "--name", "fsd"],
        ["--out", str(out / "clients"), "--name", "alice"],
        ["--out", str(out), "--name", "mallory"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "fsctl", "keygen", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def tcp_fsd(workdir: Path, pulsar_url: str, keys: Path):
    port = free_port()
    daemon = Fsd(
        workdir,
        pulsar_url,
        extra=[
            "--curve-secret-key",
            str(keys / "fsd.key_secret"),
            "--curve-allowed-clients",
            str(keys / "clients"),
        ],
        env={
            "XDG_RUNTIME_DIR": str(workdir),
            "FSCTL_SERVER_KEY": str(keys / "fsd.key"),
            "FSCTL_CLIENT_KEY": str(keys / "clients" / "alice.key_secret"),
        },
    )
    daemon.endpoint = f"tcp://127.0.0.1:{port}"
    daemon.start()
    yield daemon
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.stop()


def test_curve_right_keys_work(tcp_fsd: Fsd):
    assert tcp_fsd.ctl_json("ping")["pong"] is True
    assert tcp_fsd.ctl_json("list") == []
    info = tcp_fsd.ctl_json("info")
    assert info["endpoint"] == tcp_fsd.endpoint
    # Commands that change something are logged with the client's key name.
    assert tcp_fsd.ctl("delete", "-n", "nosuch").returncode == 1
    wait_for(
        lambda: any(
            '"cmd": "delete"' in line and '"client": "alice"' in line
            for line in tcp_fsd.log_path.read_text().splitlines()
        ),
        10,
        "the audit line for alice's delete",
    )


def test_curve_unknown_client_key_is_refused_with_clear_error(tcp_fsd: Fsd, keys: Path):
    # fsd sends no reply; libzmq reports the refused handshake, so fsctl need not wait out
    # its (here long) timeout to say what happened.
    started = time.monotonic()
    mallory = str(keys / "mallory.key_secret")
    result = tcp_fsd.ctl("--timeout", "60", "--client-key", mallory, "list")
    assert result.returncode == 3, result.stderr
    assert "refused authentication" in result.stderr, result.stderr
    assert "curve_allowed_clients" in result.stderr
    assert time.monotonic() - started < 30
    wait_for(
        lambda: "refused control client: key not allowed" in tcp_fsd.log_path.read_text(),
        10,
        "fsd to log the refused key",
    )
    assert tcp_fsd.ctl("ping").returncode == 0, "fsd keeps serving allowed clients"


def test_curve_allow_list_is_reread_without_restart(tcp_fsd: Fsd, keys: Path):
    mallory = ["--timeout", "10", "--client-key", str(keys / "mallory.key_secret"), "ping"]
    assert tcp_fsd.ctl(*mallory).returncode == 3
    (keys / "clients" / "mallory.key").write_text((keys / "mallory.key").read_text())
    assert tcp_fsd.ctl(*mallory).returncode == 0


def test_curve_wrong_server_key_times_out_with_clear_error(tcp_fsd: Fsd, keys: Path):
    started = time.monotonic()
    result = tcp_fsd.ctl("--timeout", "2", "--server-key", str(keys / "mallory.key"), "ping")
    assert result.returncode == 3
    assert "no reply from fsd" in result.stderr and "within 2s" in result.stderr
    assert "fsd may have refused authentication" in result.stderr, result.stderr
    assert "--server-key" in result.stderr
    assert 2 <= time.monotonic() - started < 15


def test_fsctl_tcp_without_keys_is_a_usage_error(tcp_fsd: Fsd):
    env = {k: v for k, v in tcp_fsd.env().items() if not k.startswith("FSCTL_")}
    result = subprocess.run(
        [sys.executable, "-m", "fsctl", "ping"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "--server-key" in result.stderr and "fsctl keygen" in result.stderr


def test_tcp_endpoint_without_keys_refuses_to_start(workdir, pulsar_url):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    result = _run_fsd(workdir, pulsar_url, "--endpoint", endpoint)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    for fragment in ("curve_secret_key", "curve_allowed_clients", "fsctl keygen", endpoint):
        assert fragment in line, line


def test_secret_key_readable_by_others_is_refused(workdir, pulsar_url, keys: Path):
    secret = keys / "fsd.key_secret"
    secret.chmod(0o644)
    result = _run_fsd(
        workdir,
        pulsar_url,
        "--endpoint", f"tcp://127.0.0.1:{free_port()}",
        "--curve-secret-key", str(secret),
        "--curve-allowed-clients", str(keys / "clients"),
    )  # fmt: skip
    assert result.returncode == 1
    assert f"chmod 600 {secret}" in result.stderr, result.stderr
