import socket
import uuid

import pytest

from fsd.sd_notify import Notifier, socket_address, watchdog_interval


@pytest.fixture
def listener(tmp_path):
    """A datagram socket standing in for systemd's NOTIFY_SOCKET (a filesystem path)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def test_messages_reach_a_path_socket(listener):
    path, sock = listener
    notifier = Notifier(path)
    assert notifier.ready("serving x")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving x"
    assert notifier.status("restoring\n2 functions")
    assert sock.recv(4096) == b"STATUS=restoring 2 functions"
    assert notifier.stopping("draining")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=draining"


def test_abstract_address():
    name = f"fs-test-{uuid.uuid4().hex}"
    assert socket_address("@" + name) == b"\0" + name.encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        assert Notifier("@" + name).notify("READY=1")
        assert sock.recv(64) == b"READY=1"


def test_no_socket_is_a_no_op_and_errors_are_swallowed(tmp_path):
    assert not Notifier(None).ready()
    assert not Notifier(None).enabled
    # A socket path nobody listens on: sendto fails, notify says so and does not raise.
    assert not Notifier(str(tmp_path / "nobody.sock")).notify("READY=1")


def test_from_environment_reads_and_hides_the_variables():
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "4000000", "PATH": "/bin"}
    notifier = Notifier.from_environment(env)
    assert notifier.address == "/run/x"
    assert notifier.watchdog == 2.0
    assert env == {"PATH": "/bin"}  # workers and the JVM must not inherit them
    kept = {"NOTIFY_SOCKET": "/run/x"}
    Notifier.from_environment(kept, unset=False)
    assert kept == {"NOTIFY_SOCKET": "/run/x"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "1000000"}, 0.5),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "42"}, 0.5),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "43"}, None),  # meant for another process
    ],
)
def test_watchdog_interval(env, expected):
    assert watchdog_interval(env, pid=42) == expected


def test_watchdog_pets_every_half_interval(listener):
    path, sock = listener
    now = [100.0]
    notifier = Notifier(path, watchdog=2.0, clock=lambda: now[0])
    notifier.ready()
    assert sock.recv(64) == b"READY=1"
    assert not notifier.pet_watchdog()  # just became ready: not due yet
    now[0] += 1.9
    assert not notifier.pet_watchdog()
    now[0] += 0.2
    assert notifier.pet_watchdog()
    assert sock.recv(64) == b"WATCHDOG=1"
    assert not notifier.pet_watchdog()
    now[0] += 2.0
    assert notifier.pet_watchdog()
    assert sock.recv(64) == b"WATCHDOG=1"


def test_no_watchdog_without_a_socket():
    notifier = Notifier(None, watchdog=1.0)
    assert notifier.watchdog is None
    assert not notifier.pet_watchdog()
