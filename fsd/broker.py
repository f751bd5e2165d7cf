"""The embedded Apache Pulsar standalone broker that fsd runs when no cluster is configured.

The broker is a real Pulsar (Java) started from the jars that
scripts/provision-pulsar.sh put in the cache; the test suite starts it the
same way, once per session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from fscommon.logs import silent_pulsar_logger
from fscommon.paths import cache_dir

log = structlog.get_logger("fsd.broker")

PULSAR_VERSION = "3.0.2"
HEALTH_TOPIC = "persistent://public/default/__function_stream_health"

# Java 17 closes these packages; Pulsar reads JVM and container metrics through them.
_JAVA_OPENS = [
    "java.base/java.io",
    "java.base/java.lang",
    "java.base/java.util.zip",
    "java.base/sun.net",
    "java.base/jdk.internal.misc",
    "java.base/jdk.internal.platform",
    "java.management/sun.management",
]


class BrokerError(Exception):
    """The embedded broker could not be provisioned, started or reached."""


def pulsar_home() -> Path:
    """Where provision-pulsar.sh put the broker's jars (FS_PULSAR_HOME overrides)."""
    if os.environ.get("FS_PULSAR_HOME"):
        return Path(os.environ["FS_PULSAR_HOME"])
    return cache_dir() / f"pulsar-{PULSAR_VERSION}"


def find_java() -> str:
    """The java binary: $JAVA_HOME/bin/java, else the one on PATH."""
    if os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise BrokerError(
            "java not found: install a JDK 17 (apt-get install openjdk-17-jre-headless)"
        )
    return found


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def accepts_producers(url: str, timeout_s: int = 5) -> bool:
    """True once the broker lets a producer attach (a real end-to-end readiness check)."""
    import pulsar

    client = pulsar.Client(
        url,
        operation_timeout_seconds=timeout_s,
        connection_timeout_ms=timeout_s * 1000,
        logger=silent_pulsar_logger(),
    )
    try:
        producer = client.create_producer(HEALTH_TOPIC)
        producer.close()
        return True
    except Exception:
        return False
    finally:
        client.close()


@dataclass
class EmbeddedPulsar:
    """A Pulsar standalone bound to 127.0.0.1 with its data under ``data_dir``."""

    data_dir: Path
    broker_port: int = 6650
    web_port: int = 8080
    heap: str = "512m"
    home: Path | None = None

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self.home = self.home or pulsar_home()

    @property
    def url(self) -> str:
        """The binary-protocol URL clients connect to."""
        return f"pulsar://127.0.0.1:{self.broker_port}"

    @property
    def admin_url(self) -> str:
        """The HTTP admin URL."""
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def log_path(self) -> Path:
        """The broker's own log file."""
        return self.data_dir / "standalone.log"

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def _pidfile(self) -> Path:
        return self.data_dir / "broker.pid"

    def _write_config(self) -> Path:
        conf = self.data_dir / "standalone.conf"
        conf.write_text(
            "\n".join(
                [
                    "clusterName=standalone",
                    "bindAddress=127.0.0.1",
                    "advertisedAddress=127.0.0.1",
                    f"brokerServicePort={self.broker_port}",
                    f"webServicePort={self.web_port}",
                    # One bookie: every ledger has one copy.
                    "managedLedgerDefaultEnsembleSize=1",
                    "managedLedgerDefaultWriteQuorum=1",
                    "managedLedgerDefaultAckQuorum=1",
                    # A VM reports no NIC speed; the load balancer insists on one.
                    "loadBalancerOverrideBrokerNicSpeedGbps=10",
                    "allowAutoTopicCreation=true",
                    # A caught-up subscription polls for new entries every 10 ms by
                    # default, which alone puts p50 at ~7 ms per hop (perf/bench_throughput).
                    "managedLedgerNewEntriesCheckDelayInMillis=0",
                    # The bookie (standalone reads its settings from this file too) holds
                    # journal writes up to 2 ms to group them before the fsync. Flushing as
                    # soon as its queue is empty takes that off every hop at low rates (a
                    # hop's p50 ~2.4 -> ~0.7 ms); under load the queue is never empty, so
                    # writes still group. Durability is unchanged: every write is synced.
                    "journalFlushWhenQueueEmpty=true",
                    "allowAutoTopicCreationType=non-partitioned",
                    # Needed later for effectively-once (producer sequence ids).
                    "brokerDeduplicationEnabled=false",
                    "",
                ]
            )
        )
        return conf

    def _kill_stale(self) -> None:
        """A broker left behind by an fsd that was killed -9 holds our ports and data."""
        pidfile = self._pidfile()
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            pidfile.unlink(missing_ok=True)
            return
        if b"PulsarStandaloneStarter" in cmdline and str(self.data_dir).encode() in cmdline:
            log.warning("stopping a broker left over from an earlier run", pid=pid)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.2)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)

    def start(self) -> None:
        """Start the broker process (returns at once; see wait_ready)."""
        assert self.home is not None
        lib = self.home / "lib"
        if not (self.home / ".complete").exists() or not lib.is_dir():
            raise BrokerError(
                f"Apache Pulsar is not provisioned at {self.home}: run scripts/provision-pulsar.sh "
                f"(or 'make setup'), or give fsd --pulsar-url of a running cluster"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._kill_stale()
        for port in (self.broker_port, self.web_port):
            if port_open("127.0.0.1", port):
                raise BrokerError(
                    f"port 127.0.0.1:{port} is already in use: stop what listens there, or start "
                    f"fsd with --pulsar-port/--pulsar-web-port, or --pulsar-url to use that broker"
                )
        conf = self._write_config()
        cmd = [
            # The broker dies with fsd even if fsd is killed -9.
            *(["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []),
            find_java(),
            "-Xms128m",
            f"-Xmx{self.heap}",
            "-XX:MaxDirectMemorySize=512m",
            "-XX:+UseG1GC",
            "-Dpulsar.allocator.exit_on_oom=true",
            *[f"--add-opens={pkg}=ALL-UNNAMED" for pkg in _JAVA_OPENS],
            "-cp",
            f"{lib}/*",
            "org.apache.pulsar.PulsarStandaloneStarter",
            "--config",
            str(conf),
            "-nfw",
            "-nss",
            "--bookkeeper-dir",
            str(self.data_dir / "bookkeeper"),
            "--metadata-dir",
            str(self.data_dir / "metadata"),
        ]
        logfile = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        log.info("starting embedded Pulsar", url=self.url, data_dir=str(self.data_dir))
        self._proc = subprocess.Popen(
            cmd,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logfile.close()
        self._pidfile().write_text(str(self._proc.pid))

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the broker accepts producers; raise BrokerError if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(
                    f"embedded Pulsar exited with code {self._proc.returncode} while starting; "
                    f"see {self.log_path}"
                )
            if port_open("127.0.0.1", self.broker_port) and accepts_producers(self.url):
                log.info("embedded Pulsar ready", url=self.url)
                return
            time.sleep(0.5)
        raise BrokerError(
            f"embedded Pulsar did not accept producers within {timeout:.0f}s; see {self.log_path}"
        )

    def alive(self) -> bool:
        """True while the broker process runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The broker process's return code once it has exited (negative: the signal)."""
        return self._proc.poll() if self._proc is not None else None

    def kill(self) -> None:
        """SIGKILL a broker that failed to start (no grace: it never served anyone)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._pidfile().unlink(missing_ok=True)
        self._proc = None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._pidfile().unlink(missing_ok=True)
        self._proc = None
