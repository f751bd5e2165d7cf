"""Log setup (JSON vs console, fields on every line), the log reader and fsctl's log lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading

import structlog

from fscommon import logs
from fscommon.protocol import LOGS_MAX_LINE_CHARS
from fsctl import output
from fsd.log_reader import read_from, read_logs, tail
from tests.helpers import REPO


def _line(i: int, ts: str) -> bytes:
    return json.dumps({"event": f"e{i}", "timestamp": ts}).encode() + b"\n"


def test_tail_returns_complete_lines_and_the_offset_after_them(tmp_path):
    path = tmp_path / "f.0.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)) + b"partial")
    lines, offset = tail(path, 3, 1 << 20)
    assert lines == [b"line 997", b"line 998", b"line 999"]
    assert offset == path.stat().st_size - len(b"partial")
    assert tail(path, 0, 1 << 20)[0] == []
    # A byte budget smaller than the lines asked for: the newest lines that fit, whole.
    few, _ = tail(path, 1000, 40)
    assert few and few[-1] == b"line 999" and all(x.startswith(b"line ") for x in few)
    assert tail(tmp_path / "missing.log", 5, 100) == ([], 0)


def test_read_from_follows_appends_and_restarts_after_truncation(tmp_path):
    path = tmp_path / "f.0.log"
    path.write_bytes(b"a\nb\n")
    _, offset = tail(path, 10, 1 << 20)
    assert read_from(path, offset, 1 << 20) == ([], offset)
    with open(path, "ab") as fh:
        fh.write(b"c\nd")
    lines, offset = read_from(path, offset, 1 << 20)
    assert lines == [b"c"]
    with open(path, "ab") as fh:
        fh.write(b"\n")
    assert read_from(path, offset, 1 << 20)[0] == [b"d"]
    path.write_bytes(b"new\n")  # truncated (a new file): start again from its beginning
    assert read_from(path, offset + 100, 1 << 20) == ([b"new"], 4)
    # One line longer than the budget is handed over rather than stalling the follower.
    path.write_bytes(b"x" * 50)
    assert read_from(path, 0, 10) == ([b"x" * 10], 10)


def test_read_logs_merges_replicas_by_time_and_cuts_long_lines(tmp_path):
    files = {
        0: _line(1, "2026-01-01T00:00:01Z") + b"raw stderr\n" + _line(3, "2026-01-01T00:00:03Z"),
        1: _line(2, "2026-01-01T00:00:02Z") + b"y" * (LOGS_MAX_LINE_CHARS + 5) + b"\n",
    }
    for index, data in files.items():
        (tmp_path / f"f.{index}.log").write_bytes(data)
    reply = read_logs(lambda i: tmp_path / f"f.{i}.log", [0, 1], 10, None, 1 << 20)
    got = [(item["replica"], item["line"][:12]) for item in reply["lines"]]
    assert got == [
        (0, '{"event": "e'),
        (0, "raw stderr"),  # keeps its place after the line before it
        (1, '{"event": "e'),
        (1, "y" * 12),
        (0, '{"event": "e'),
    ]
    assert reply["lines"][3]["line"].endswith("... [5 more characters cut]")
    assert reply["cursor"] == {str(i): len(data) for i, data in files.items()}
    assert len(read_logs(lambda i: tmp_path / f"f.{i}.log", [0, 1], 2, None, 1 << 20)["lines"]) == 2
    again = read_logs(lambda i: tmp_path / f"f.{i}.log", [0, 1], 0, reply["cursor"], 1 << 20)
    assert again["lines"] == []


def _echo(capsys, *args) -> str:
    output.log_line(*args)
    return capsys.readouterr().out


def test_fsctl_log_lines_always_carry_function_and_replica(capsys):
    structured = json.dumps(
        {
            "event": "ready",
            "level": "info",
            "timestamp": "T",
            "function": "f",
            "replica": 1,
            "kind": "abi",
        }
    )
    assert _echo(capsys, "f", 1, structured, False) == "T info    [f/1] ready kind=abi\n"
    assert _echo(capsys, "f", 1, "Segfault in guest", False) == "[f/1] Segfault in guest\n"
    raw = json.loads(_echo(capsys, "f", 1, "Segfault in guest", True))
    assert raw == {"event": "Segfault in guest", "function": "f", "replica": 1, "source": "stderr"}
    assert json.loads(_echo(capsys, "f", 1, structured, True))["kind"] == "abi"
    assert json.loads(_echo(capsys, "f", 1, "{not json", True))["event"] == "{not json"


def test_worker_fields_on_every_line_from_every_thread_and_stdlib(capsys):
    logs.configure("info", json=True, function="wc", replica=3)
    try:
        structlog.get_logger("t").info("main thread", source="guest")
        thread = threading.Thread(target=lambda: structlog.get_logger("t").warning("other"))
        thread.start()
        thread.join()
        logging.getLogger("somelib").warning("from %s", "stdlib")
        logging.getLogger("somelib").info("below the stdlib threshold")
    finally:
        # Back to defaults: the configured loggers write to capsys's stream, closed later.
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert [x["event"] for x in lines] == ["main thread", "other", "from stdlib"]
    assert all(x["function"] == "wc" and x["replica"] == 3 and "timestamp" in x for x in lines)
    assert lines[0]["source"] == "guest" and lines[2]["logger"] == "somelib"


def test_json_under_systemd_console_on_a_terminal(tmp_path):
    """JOURNAL_STREAM naming stderr's dev:inode means the journal, even on a tty."""
    code = (
        "import os, sys; from fscommon import logs; "
        "st = os.fstat(2); "
        "os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'; a = logs.stderr_is_journal(); "
        "os.environ['JOURNAL_STREAM'] = '1:2'; b = logs.stderr_is_journal(); "
        "print(a, b, logs.wants_json())"
    )
    with open(tmp_path / "err", "w") as err:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=False,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    # stderr is a file here: never a terminal, so JSON either way.
    assert result.stdout.split() == ["True", "False", "True"]
