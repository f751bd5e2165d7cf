"""A real PostgreSQL for the tests: Debian's server binaries, a throwaway cluster.

The session fixture ``postgres_url`` yields ``FS_TEST_POSTGRES_URL`` when it is
set; otherwise it runs ``initdb`` + ``pg_ctl`` (from /usr/lib/postgresql/*/bin,
installed by scripts/setup.sh) in a temp dir on a free port, listening on
127.0.0.1 with its unix socket inside the temp dir, and stops it at the end.
initdb refuses to run as root, so under root the server runs as the
``postgres`` system user the package creates (``runuser``), owning the temp dir.

Clients connect over TCP with a password (``scram-sha-256``), so tests also see
that no error message carries it. To start one by hand for several sessions:

    python -m tests.postgres start DIR   # prints the URL; stop with: ... stop DIR
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_for

USER = "fs"
DATABASE = "fs_test"


def server_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb, or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class LocalPostgres:
    """One PostgreSQL cluster in ``base`` (data, socket and log), on ``port``."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        bin_dir = server_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                "run scripts/setup.sh, or set FS_TEST_POSTGRES_URL to a server of yours"
            )
        self.bin = bin_dir
        self.base = base
        self.data = base / "data"
        self.socket_dir = base / "sock"
        self.log = base / "postgres.log"
        self.port_file = base / "port"
        self.password_file = base / "password"
        self.port = port
        # initdb and postgres refuse root; the package's system user runs them then.
        self.run_as = "postgres" if os.geteuid() == 0 else None

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        return subprocess.run(
            [*prefix, *cmd], capture_output=True, text=True, timeout=120, cwd=self.base
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr}\n{log}")

    @property
    def url(self) -> str:
        """The client URL (TCP, password auth)."""
        password = self.password_file.read_text().strip()
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> str:
        """initdb (first time), start, create the test database; returns the URL."""
        self.base.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        self.port_file.write_text(str(self.port))
        if not self.data.exists():
            self.socket_dir.mkdir(exist_ok=True)
            self.password_file.write_text(secrets.token_hex(12) + "\n")
            if self.run_as:
                uid, gid = pwd.getpwnam(self.run_as)[2:4]
                for path in (self.base, self.socket_dir, self.password_file):
                    os.chown(path, uid, gid)
            self._check(
                self._run(
                    str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "-E", "UTF8",
                    "--pwfile", str(self.password_file),
                    "--auth-local=trust", "--auth-host=scram-sha-256",
                ),
                "initdb",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            # Several fsd processes, their replicas and other sessions share one server.
            "-c max_connections=300"
        )
        self._check(
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                "-o", options, "-w", "-t", "60", "start",
            ),
            "pg_ctl start",
        )  # fmt: skip
        self._create_database()
        return self.url

    def _create_database(self) -> None:
        import psycopg

        admin = self.url.rsplit("/", 1)[0] + "/postgres"

        def connected() -> psycopg.Connection | None:
            try:
                return psycopg.connect(admin, autocommit=True, connect_timeout=2)
            except psycopg.OperationalError:
                return None

        conn = wait_for(connected, 30, f"PostgreSQL on port {self.port} to accept connections")
        with conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        """Stop the server (fast: roll back open transactions)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL: FS_TEST_POSTGRES_URL if given, else one started for the session."""
    if os.environ.get("FS_TEST_POSTGRES_URL"):
        yield os.environ["FS_TEST_POSTGRES_URL"]
        return
    base = Path(tempfile.mkdtemp(prefix="fs-test-pg-", dir="/tmp"))
    server = LocalPostgres(base)
    try:
        url = server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    yield url
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``start DIR [PORT]`` prints the URL; ``stop DIR``."""
    if len(argv) < 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.postgres start DIR [PORT] | stop DIR", file=sys.stderr)
        return 2
    base = Path(argv[1]).resolve()
    port_file = base / "port"
    port = int(argv[2]) if len(argv) > 2 else None
    if port is None and port_file.exists():
        port = int(port_file.read_text())
    server = LocalPostgres(base, port)
    if argv[0] == "start":
        print(server.start())
    else:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
