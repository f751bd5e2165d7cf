"""fsworker/local_run.py and ``fsctl run``: the worker's loop on local messages, no broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fscommon.function_options import FunctionOptions
from fsctl.cli import main
from fsworker.local_input import LocalInput
from fsworker.local_run import LocalRunError, LocalRunSpec, RunEvent, RunEventKind, run_local
from fsworker.state_store import SqliteStateStore
from tests import dead_letter_fixtures as dfx
from tests import wasm_fixtures as fx


def _run(wasm: Path, payloads: list[bytes], **options) -> tuple[list[RunEvent], object]:
    state = options.pop("state_path", None)
    config = options.pop("config", {})
    spec = LocalRunSpec(wasm, "f", FunctionOptions(**options), config, state_path=state)
    events: list[RunEvent] = []
    summary = run_local(spec, [LocalInput(p) for p in payloads], events.append)
    return events, summary


def _outputs(events: list[RunEvent]) -> list[bytes]:
    return [e.data for e in events if e.kind is RunEventKind.OUTPUT]


def _failures(events: list[RunEvent]) -> dict[int, tuple[str, int]]:
    return {e.input: (e.error_kind, e.attempts) for e in events if e.kind is RunEventKind.FAILURE}


def test_failures_carry_the_dead_letter_kind_after_every_attempt(tmp_path):
    wasm = fx.write(tmp_path, "echo", fx.ECHO)
    events, summary = _run(wasm, [b"a", b"X trap", b"E rejects", b"b"], max_retries=2)
    assert _outputs(events) == [b"a", b"b"]
    assert _failures(events) == {2: ("trap", 3), 3: ("error", 3)}
    trap = next(e for e in events if e.kind is RunEventKind.FAILURE)
    assert trap.error.startswith("wasm trap: wasm `unreachable` instruction executed")
    assert (summary.inputs, summary.succeeded, summary.failed, summary.outputs) == (4, 2, 2, 2)


def test_limits_fail_with_their_kinds(tmp_path):
    loop = fx.write(tmp_path, "loop", fx.LOOP_ON_L)
    events, _ = _run(loop, [b"Loop", b"ok"], max_retries=0, timeout_ms=100)
    assert _failures(events) == {1: ("timeout", 1)} and _outputs(events) == [b"ok"]
    bomb = fx.write(tmp_path, "bomb", dfx.MEMORY_BOMB)
    events, _ = _run(bomb, [b"More", b"ok"], max_retries=0, memory_limit=2 * 1024 * 1024)
    assert _failures(events) == {1: ("memory-limit", 1)} and _outputs(events) == [b"ok"]


def test_at_most_once_fails_at_the_first_attempt(tmp_path):
    wasm = fx.write(tmp_path, "echo", fx.ECHO)
    events, _ = _run(wasm, [b"X"], guarantee="at-most-once", max_retries=5)
    assert _failures(events) == {1: ("trap", 1)}


def test_guest_log_lines_config_key_and_properties(tmp_path):
    wasm = fx.write(tmp_path, "host", fx.HOST_API)
    spec = LocalRunSpec(wasm, "f", FunctionOptions(), {"k": "v"})
    inputs = [LocalInput(b"l2careful"), LocalInput(b"ck"), LocalInput(b"kx", key="the-key"),
              LocalInput(b"rp", properties={"p": "pv"})]  # fmt: skip
    events: list[RunEvent] = []
    run_local(spec, inputs, events.append)
    logs = [(e.input, e.level, e.message) for e in events if e.kind is RunEventKind.LOG]
    assert logs == [(1, "warning", "careful")]
    outputs = {e.input: e for e in events if e.kind is RunEventKind.OUTPUT}
    assert outputs[2].data == b"=1v"
    assert outputs[3].data == b"=2the-key" and outputs[3].key == "the-key"
    assert outputs[4].properties == {"p": "pv", "fs-function": "f"}


def test_state_file_keeps_counts_across_runs_and_failed_writes_are_undone(tmp_path):
    wasm = fx.write(tmp_path, "state", fx.STATE_BATCH)
    db = tmp_path / "state.sqlite"
    _run(wasm, [b"a", b"b", b"a", b"X"], state_path=db, max_retries=1)
    events, _ = _run(wasm, [b"a"], state_path=db)
    assert _outputs(events) == [b"a"]
    store = SqliteStateStore(db)
    try:
        assert dict(store.scan(b"", 100)) == {b"a": b"3", b"b": b"1"}
        # This run's exactly-once marks are gone; only the flag that enables them stays.
        assert store._db.execute("SELECT count(*) FROM state").fetchone()[0] == 3
    finally:
        store.close()


def test_a_bad_module_is_a_run_error(tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"not wasm")
    with pytest.raises(LocalRunError, match=r"bad\.wasm"):
        _run(bad, [b"x"])
    missing_export = fx.write(tmp_path, "noexport", fx.NO_EXPORTS)
    with pytest.raises(LocalRunError):
        _run(missing_export, [b"x"])


# --- the command ------------------------------------------------------------------------------


def _fsctl(*args: str, stdin: bytes | None = None):
    return CliRunner().invoke(main, ["run", *args], input=stdin)


def test_fsctl_run_prints_outputs_failures_and_exits_1(tmp_path):
    wasm = str(fx.write(tmp_path, "echo", fx.ECHO))
    result = _fsctl("-a", wasm, "--max-retries", "0", stdin=b"hello\nX boom\n")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "hello"
    assert "FAILED input 2 (<stdin>:2) after 1 attempt: trap: wasm trap:" in result.stderr
    assert "2 inputs: 1 succeeded, 1 failed; 1 output(s)" in result.stderr
    ok = _fsctl("-a", wasm, "--json", stdin=b'{"data":"hi","key":"k"}\n')
    assert ok.exit_code == 0  # lines: the whole JSON text is the payload
    assert json.loads(ok.stdout.splitlines()[0])["data"] == '{"data":"hi","key":"k"}'


def test_fsctl_run_json_lines_with_key_and_the_summary(tmp_path):
    wasm = str(fx.write(tmp_path, "echo", fx.ECHO))
    source = tmp_path / "in.jsonl"
    source.write_text('{"data": "a", "key": "k", "properties": {"p": "1"}}\n')
    result = _fsctl("-a", wasm, "--input", str(source), "--input-format", "json-lines",
                    "--json", "-n", "named")  # fmt: skip
    assert result.exit_code == 0, result.output
    output, summary = (json.loads(line) for line in result.stdout.splitlines())
    assert output == {"type": "output", "input": 1, "origin": f"{source}:1", "data": "a",
                      "encoding": "utf-8", "key": "k", "event_time": None,
                      "properties": {"p": "1", "fs-function": "named"}}  # fmt: skip
    assert summary == {"type": "summary", "inputs": 1, "succeeded": 1, "failed": 0, "outputs": 1}


def test_fsctl_run_usage_errors_exit_2(tmp_path):
    wasm = str(fx.write(tmp_path, "echo", fx.ECHO))
    missing = _fsctl("-a", str(tmp_path / "nope.wasm"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    no_input = _fsctl("-a", wasm, "--input", str(tmp_path / "nope.txt"))
    assert no_input.exit_code == 2 and "nope.txt does not exist" in no_input.stderr
    source = tmp_path / "bad.jsonl"
    source.write_text('{"data": "fine"}\n{"data": \n')
    bad_line = _fsctl("-a", wasm, "--input", str(source), "--input-format", "json-lines")
    assert bad_line.exit_code == 2
    assert f"{source}:2: not JSON" in bad_line.stderr
    assert bad_line.stdout == ""  # a file is checked before anything runs
    bad_option = _fsctl("-a", wasm, "--memory-limit", "lots", stdin=b"x\n")
    assert bad_option.exit_code == 2


def test_fsctl_run_bad_module_exits_1(tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\x00asm garbage")
    result = _fsctl("-a", str(bad), stdin=b"x\n")
    assert result.exit_code == 1 and "bad.wasm" in result.stderr


def test_fsctl_run_shows_the_state_at_the_end(tmp_path):
    wasm = str(fx.write(tmp_path, "state", fx.STATE_BATCH))
    result = _fsctl(
        "-a",
        wasm,
        "--show-state",
        stdin=b"a\nb\na\nX\n",
    )
    assert result.exit_code == 1  # X traps; its write is undone
    assert "state a = 2" in result.stderr and "state b = 1" in result.stderr
    assert "state X" not in result.stderr
