"""fsd under systemd: the units verify, the notify protocol, the installer, config defaults.

The notify tests stand in for systemd: they bind the datagram socket that
NOTIFY_SOCKET names and read what a real fsd sends.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, REPO, Fsd, free_port, pid_alive, unique, wait_for

pytestmark = pytest.mark.integration

UNITS = ("fsd.service", "fs-pulsar.service")
INSTALL = REPO / "scripts" / "install-systemd.sh"


# ---------------------------------------------------------------- the units


def _install(destdir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALL), *flags],
        capture_output=True,
        text=True,
        env={**os.environ, "DESTDIR": str(destdir)},
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_verify(tmp_path):
    """systemd-analyze verify accepts both units as installed, without a single warning.

    verify insists that ExecStart binaries exist, so the units are installed
    (into a DESTDIR) pointing at an fsd wrapper that exists, with a prefix
    that is linked to where the installer put provision-pulsar.sh.
    """
    fsd = tmp_path / "bin" / "fsd"
    fsd.parent.mkdir()
    fsd.write_text(f'#!/bin/sh\nexec {sys.executable} -m fsd "$@"\n')
    fsd.chmod(0o755)
    dest, prefix = tmp_path / "dest", tmp_path / "prefix"
    done = _install(dest, "--prefix", str(prefix), "--fsd", str(fsd))
    assert done.returncode == 0, done.stderr
    prefix.symlink_to(f"{dest}{prefix}")
    unit_dir = dest / "etc" / "systemd" / "system"
    for unit in UNITS:
        text = (unit_dir / unit).read_text()
        assert f"ExecStart={fsd} " in text
        assert "/usr/local" not in text, "an install path was not rewritten"
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(unit_dir / u) for u in UNITS)],
        capture_output=True,
        text=True,
        cwd=unit_dir,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    # The offline security score ("exposure", 0-10, lower is better) is 1.5 for both;
    # fail if a change pushes either above 2.0.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20"]
        + [str(unit_dir / u) for u in UNITS],
        capture_output=True,
        text=True,
        cwd=unit_dir,
        timeout=60,
    )
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr


def test_units_say_what_the_issue_asks():
    """The directives an operator relies on are there, and MDWE is deliberately absent."""
    for unit in UNITS:
        directives = {
            line.split("=", 1)[0]: line.split("=", 1)[1]
            for line in (REPO / "systemd" / unit).read_text().splitlines()
            if "=" in line and not line.startswith("#")
        }
        for key, value in {
            "Type": "notify",
            "NotifyAccess": "main",
            "KillMode": "mixed",
            "Restart": "on-failure",
            "User": "function-stream",
            "StateDirectory": "function-stream",
            "ConfigurationDirectory": "function-stream",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "CapabilityBoundingSet": "",
            "UMask": "0027",
        }.items():
            assert directives.get(key) == value, f"{unit}: {key}={directives.get(key)!r}"
        assert "WatchdogSec" in directives
        assert "MemoryDenyWriteExecute" not in directives  # wasmtime and the JIT need W+X
        assert "--config %E/function-stream/fsd.toml" in directives["ExecStart"]
    assert "RuntimeDirectory" in (REPO / "systemd" / "fsd.service").read_text()


# ---------------------------------------------------------------- the installer


def test_install_dry_run_changes_nothing(tmp_path):
    dest = tmp_path / "dest"
    done = _install(dest, "--dry-run", "--fsd", "/usr/bin/env")
    assert done.returncode == 0, done.stderr
    assert not dest.exists()
    assert "fsd.service (mode 0644)" in done.stdout
    assert "fsd.toml (mode 0640)" in done.stdout
    live = subprocess.run(
        [str(INSTALL), "--dry-run", "--separate-broker", "--enable"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DESTDIR"},
        timeout=60,
    )
    assert live.returncode == 0, live.stderr
    for step in (
        "+ useradd --system",
        "+ systemctl daemon-reload",
        "+ systemctl enable --now fs-pulsar.service",
        "+ systemctl enable --now fsd.service",
    ):
        if step.startswith("+ useradd") and "function-stream" in _passwd_names():
            continue  # the user already exists here: rightly not created again
        assert step in live.stdout, live.stdout


def _passwd_names() -> set[str]:
    return {line.split(":", 1)[0] for line in Path("/etc/passwd").read_text().splitlines()}


def test_install_into_destdir(tmp_path):
    """Units with the given paths, a config fsd accepts, kept on a second run."""
    dest = tmp_path / "dest"
    done = _install(dest, "--prefix", "/opt/fs", "--separate-broker")
    assert done.returncode == 0, done.stderr
    unit = (dest / "etc/systemd/system/fsd.service").read_text()
    assert "ExecStart=/opt/fs/bin/fsd --config" in unit
    pulsar_unit = (dest / "etc/systemd/system/fs-pulsar.service").read_text()
    assert "ExecStartPre=/opt/fs/lib/function-stream/provision-pulsar.sh" in pulsar_unit
    assert os.access(dest / "opt/fs/lib/function-stream/provision-pulsar.sh", os.X_OK)
    config = dest / "etc/function-stream/fsd.toml"
    assert config.stat().st_mode & 0o777 == 0o640
    checked = subprocess.run(
        [sys.executable, "-m", "fsd", "--config", str(config), "--check-config", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["pulsar_url"] == "pulsar://127.0.0.1:6650"
    config.write_text('log_level = "debug"\n')
    again = _install(dest)
    assert again.returncode == 0, again.stderr
    assert config.read_text() == 'log_level = "debug"\n', "the operator's config was overwritten"
    bad = _install(dest, "--bogus")
    assert bad.returncode == 2 and "unknown argument '--bogus'" in bad.stderr


# ---------------------------------------------------------------- the notify protocol


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[str] = []

    def next(self, timeout: float) -> str | None:
        """The next datagram, or None if none came within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            message = self.sock.recv(4096).decode()
        except TimeoutError:
            return None
        self.received.append(message)
        return message

    def wait_for(self, line: str, timeout: float) -> str:
        """Read until a datagram carries ``line``; fail naming what came instead."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.next(left)
            if message is not None and line in message.splitlines():
                return message
        raise AssertionError(f"no {line} within {timeout}s; got {self.received}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(workdir):
    fake = FakeSystemd(workdir / "notify.sock")
    yield fake
    fake.close()


def _spawn(daemon: Fsd, env: dict[str, str]) -> Fsd:
    """Start fsd like Fsd.start, but return at once: the test watches its startup."""
    cmd = [sys.executable, "-m", "fsd", "--state-dir", str(daemon.state_dir), "--log-json"]
    cmd += ["--endpoint", daemon.endpoint, *daemon.extra]
    if daemon.pulsar_url:
        cmd += ["--pulsar-url", daemon.pulsar_url]
    with open(daemon.log_path, "ab") as log:
        daemon.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**daemon.env(), **env}, cwd=REPO
        )
    return daemon


def _workers(pid: int) -> dict[int, list[str]]:
    """fsd's fsworker children right now: pid -> argv."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "fsworker" in argv:
            found[int(entry.name)] = argv
    return found


def _worker_spec(argv: list[str]) -> dict:
    return json.loads(argv[argv.index("--spec") + 1])


def test_ready_only_once_functions_are_restored(workdir, pulsar_url, systemd):
    """READY=1 comes after the control socket is bound and the restored replica is spawned."""
    name = unique("notify")
    wasm = str(EXAMPLES / "basic" / "c" / "basic.wasm")
    first = Fsd(workdir, pulsar_url, env={"NOTIFY_SOCKET": str(systemd.path)}).start()
    try:
        systemd.wait_for("READY=1", 30)
        created = first.ctl(
            "create", "-n", name, "-a", wasm, "-i", unique("in"), "-o", unique("out")
        )
        assert created.returncode == 0, created.stderr
        worker = next(iter(_workers(first.proc.pid).items()))
        env = (Path("/proc") / str(worker[0]) / "environ").read_bytes().split(b"\0")
        assert not any(v.startswith(b"NOTIFY_SOCKET=") for v in env), "worker inherited it"
    finally:
        assert first.stop() == 0
    systemd.wait_for("STOPPING=1", 5)

    second = _spawn(Fsd(workdir, pulsar_url), {"NOTIFY_SOCKET": str(systemd.path)})
    try:
        ready = systemd.wait_for("READY=1", 60)
        # At the moment READY=1 arrives, without asking fsd anything: the socket
        # exists and the replica restore started is already a process.
        spawned = _workers(second.proc.pid)
        assert Path(second.endpoint[len("ipc://") :]).exists()
        assert len(spawned) == 1, f"READY=1 before the restored replica was spawned: {spawned}"
        assert _worker_spec(next(iter(spawned.values())))["function"] == name
        assert "STATUS=restoring 1 function(s)" in systemd.received[-2]
        assert "1 function(s) restored" in ready
        pinged = second.ctl("ping", timeout=10)
        assert pinged.returncode == 0, pinged.stderr
        second.wait_running(name, 1)
    finally:
        second.stop()


def test_watchdog_and_stopping(workdir, pulsar_url, systemd):
    """WATCHDOG=1 every WATCHDOG_USEC/2 from the main loop; STOPPING=1 on SIGTERM."""
    env = {"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "400000"}
    daemon = _spawn(Fsd(workdir, pulsar_url), env)
    try:
        systemd.wait_for("READY=1", 30)
        # For 3 s: one pet per 0.2 s is about 15. Every loop turn (0.1 s) would be
        # 30 or more; a loop that does not pet, none.
        deadline = time.monotonic() + 3.0
        pets = 0
        while (left := deadline - time.monotonic()) > 0:
            message = systemd.next(left)
            pets += message is not None and "WATCHDOG=1" in message.splitlines()
        assert 5 <= pets <= 22, pets
    finally:
        daemon.proc.send_signal(15)
    stopping = systemd.wait_for("STOPPING=1", 10)
    assert "STATUS=draining workers" in stopping
    assert daemon.proc.wait(30) == 0


def test_no_ready_while_the_embedded_broker_is_not_accepting(workdir, systemd):
    """With the embedded broker, READY=1 waits for it to accept producers.

    A fake JVM that never listens stands in for a slow broker start.
    """
    daemon = Fsd(workdir, None, extra=["--pulsar-port", str(free_port())])
    daemon.extra += ["--pulsar-web-port", str(free_port())]
    env = {"NOTIFY_SOCKET": str(systemd.path), **_fake_jvm(workdir, "exec sleep 120")}
    _spawn(daemon, env)
    try:
        systemd.wait_for("STATUS=starting the embedded Pulsar standalone", 30)
        # The broker never answers: for the next seconds nothing may claim readiness.
        while systemd.next(3) is not None:
            pass
        assert not any("READY=1" in m.splitlines() for m in systemd.received), systemd.received
        assert daemon.proc.poll() is None
    finally:
        daemon.kill()  # its broker wait is not interruptible; the fake JVM dies with it


def _fake_jvm(workdir: Path, script: str) -> dict[str, str]:
    """Environment that makes fsd's broker start run ``script`` instead of a JVM."""
    home = workdir / "pulsar-home"
    (home / "lib").mkdir(parents=True)
    (home / ".complete").write_text("fake\n")
    java = workdir / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\n{script}\n")
    java.chmod(0o755)
    return {"FS_PULSAR_HOME": str(home), "JAVA_HOME": str(java.parent.parent)}


def _broker_only(workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    ports = ["--pulsar-port", str(free_port()), "--pulsar-web-port", str(free_port())]
    cmd = [sys.executable, "-m", "fsd", "--broker-only", "--log-json"]
    cmd += ["--state-dir", str(workdir / "state"), *ports]
    log = open(workdir / "broker-only.log", "ab")  # noqa: SIM115 - the child owns it
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    full_env.pop("FS_PULSAR_URL", None)
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
    finally:
        log.close()


def test_broker_only_fails_clearly_when_the_jvm_dies(workdir, systemd):
    """fs-pulsar.service's ExecStart: a JVM that dies at start is exit 1, no READY=1."""
    env = {"NOTIFY_SOCKET": str(systemd.path), **_fake_jvm(workdir, "exit 3")}
    proc = _broker_only(workdir, env)
    assert proc.wait(60) == 1
    log = (workdir / "broker-only.log").read_text()
    assert "embedded Pulsar exited with code 3 while starting" in log
    while systemd.next(0.5) is not None:
        pass
    assert "STATUS=starting the Pulsar standalone" in systemd.received
    assert not any("READY=1" in m.splitlines() for m in systemd.received)


def test_broker_only_runs_a_real_standalone(workdir, systemd):
    """fsd --broker-only: READY=1 once producers attach, watchdog, STOPPING=1, clean exit.

    Starts a JVM, so it takes as long as test_embedded_broker does.
    """
    from fsd.broker import accepts_producers, pulsar_home

    if not (pulsar_home() / ".complete").exists():
        pytest.skip("Apache Pulsar is not provisioned (scripts/provision-pulsar.sh)")
    proc = _broker_only(workdir, {"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "2000000"})
    try:
        ready = systemd.wait_for("READY=1", 240)
        url = ready.split("STATUS=serving ", 1)[1].split(" ", 1)[0]
        assert accepts_producers(url)
        systemd.wait_for("WATCHDOG=1", 5)
        broker_pid = int((workdir / "state" / "pulsar" / "broker.pid").read_text())
        assert pid_alive(broker_pid)
    finally:
        proc.send_signal(15)
    systemd.wait_for("STOPPING=1", 10)
    assert proc.wait(60) == 0
    wait_for(lambda: not pid_alive(broker_pid), 30, "the JVM to stop with fsd --broker-only")


# ---------------------------------------------------------------- config defaults at create


def test_function_defaults_come_from_the_config(workdir, pulsar_url):
    """Options a create leaves out take fsd's default_*; options it gives win."""
    config = workdir / "fsd.toml"
    config.write_text(
        'default_timeout_ms = 1234\ndefault_memory_limit = "64MiB"\n'
        "default_max_retries = 7\ndefault_retry_delay_ms = 250\n"
    )
    daemon = Fsd(workdir, pulsar_url, extra=["--config", str(config)]).start()
    wasm = str(EXAMPLES / "basic" / "c" / "basic.wasm")
    try:
        plain, tuned = unique("defaults"), unique("explicit")
        created = daemon.ctl("create", "-n", plain, "-a", wasm, "-i", unique("in"))
        assert created.returncode == 0, created.stderr
        created = daemon.ctl(
            "create", "-n", tuned, "-a", wasm, "-i", unique("in"),
            "--timeout-ms", "0", "--max-retries", "1",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        options = {
            spec["function"]: spec["options"]
            for spec in map(_worker_spec, _workers(daemon.proc.pid).values())
        }
        assert {k: options[plain][k] for k in ("timeout_ms", "memory_limit")} == {
            "timeout_ms": 1234,
            "memory_limit": 64 * 1024 * 1024,
        }
        assert (options[plain]["max_retries"], options[plain]["retry_delay_ms"]) == (7, 250)
        assert options[tuned]["timeout_ms"] is None  # explicitly "no limit"
        assert (options[tuned]["max_retries"], options[tuned]["retry_delay_ms"]) == (1, 250)
    finally:
        daemon.stop()
