"""fsctl run against the platform: the same inputs give the same outputs, the same failures
(kind, error text, attempts) and the same state, through the public CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import dead_letter_fixtures as dfx
from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES, Fsd, unique, wait_for
from tests.streams import Reader, send

pytestmark = pytest.mark.integration

NS = "persistent://public/default/"
RETRIES = ["--max-retries", "1", "--retry-delay-ms", "100"]
PERSON_SCHEMA = {
    "type": "object",
    "required": ["name", "money"],
    "properties": {"name": {"type": "string"}, "money": {"type": "integer"}},
}


def _scenarios(workdir: Path) -> list[tuple[str, str, list[str], list[bytes]]]:
    """(label, module, flags, inputs): a trap, a timeout, a memory bomb, a schema error."""
    schema = workdir / "person.schema.json"
    schema.write_text(json.dumps(PERSON_SCHEMA))
    return [
        ("trap", str(fx.write(workdir, "echo", fx.ECHO)), [],
         [b"one", b"X marks the trap", b"E is refused", b"two"]),
        ("timeout", str(fx.write(workdir, "loop", fx.LOOP_ON_L)), ["--timeout-ms", "200"],
         [b"Loop forever", b"fine"]),
        ("memory", str(fx.write(workdir, "bomb", dfx.MEMORY_BOMB)), ["--memory-limit", "2MiB"],
         [b"More memory", b"fine"]),
        ("schema", str(EXAMPLES / "basic" / "c" / "basic.wasm"),
         ["--input-schema", "json", "--json-schema", str(schema), "--output-schema", "json"],
         [b"{not json", b'{"name":"x"}', b'{"name":"ok","money":1}']),
    ]  # fmt: skip


def _local(fsd: Fsd, wasm: str, flags: list[str], inputs: list[bytes], *extra: str):
    """fsctl run's outputs (sorted) and failures by payload: (kind, error, attempts)."""
    source = fsd.workdir / f"{unique('in')}.txt"
    source.write_bytes(b"".join(p + b"\n" for p in inputs))
    result = fsd.ctl("run", "-a", wasm, "--input", str(source), *flags, *RETRIES, *extra,
                     "--json")  # fmt: skip
    events = [json.loads(line) for line in result.stdout.splitlines()]
    summary = events.pop()
    failures = {
        inputs[e["input"] - 1]: (e["error_kind"], e["error"], e["attempts"])
        for e in events
        if e["type"] == "failure"
    }
    outputs = sorted(e["data"].encode() for e in events if e["type"] == "output")
    assert result.returncode == (1 if failures else 0), result.stderr
    assert summary["failed"] == len(failures)
    return outputs, failures


def _platform(fsd: Fsd, pulsar_url: str, wasm: str, flags: list[str], inputs: list[bytes],
              outputs: int, failures: int, name: str | None = None):  # fmt: skip
    """The same on a replica: outputs (sorted) and dead letters by payload."""
    name, inp, out = name or unique("same"), unique("in"), unique("out")
    out_reader = Reader(pulsar_url, out)
    dlq_reader = Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
    try:
        result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out, *flags,
                         *RETRIES)  # fmt: skip
        assert result.returncode == 0, result.stderr
        send(pulsar_url, inp, inputs)
        got = sorted(m.data() for m in out_reader.wait(outputs))
        dead = {
            m.data(): (
                m.properties()["fs-error-kind"],
                m.properties()["fs-error"],
                int(m.properties()["fs-attempts"]),
            )
            for m in dlq_reader.wait(failures)
        }
        assert out_reader.more_within(0.5) == [] and dlq_reader.more_within(0.1) == []
        return got, dead
    finally:
        out_reader.close()
        dlq_reader.close()


def test_fsctl_run_matches_the_platform_on_traps_limits_and_schemas(fsd: Fsd, pulsar_url):
    for label, wasm, flags, inputs in _scenarios(fsd.workdir):
        local_out, local_failed = _local(fsd, wasm, flags, inputs)
        assert local_failed, f"{label}: the scenario should fail something"
        platform_out, platform_failed = _platform(
            fsd, pulsar_url, wasm, flags, inputs, len(local_out), len(local_failed)
        )
        assert platform_out == local_out, label
        assert platform_failed == local_failed, label
        assert {kind for kind, _, _ in local_failed.values()} >= {
            {"trap": "trap", "timeout": "timeout", "memory": "memory-limit",
             "schema": "schema"}[label]
        }  # fmt: skip


def test_fsctl_run_state_matches_the_platform(fsd: Fsd, pulsar_url):
    wasm = str(fx.write(fsd.workdir, "state", fx.STATE_BATCH))
    inputs = [b"a", b"b", b"a", b"X trap", b"a", b"E no"]
    db = fsd.workdir / "counter.sqlite"
    local_out, local_failed = _local(fsd, wasm, [], inputs, "--state", str(db))
    name = unique("counter")
    platform_out, platform_failed = _platform(
        fsd, pulsar_url, wasm, [], inputs, len(local_out), len(local_failed), name=name
    )
    assert (platform_out, platform_failed) == (local_out, local_failed)

    from fsworker.state_store import SqliteStateStore

    store = SqliteStateStore(db)
    local_state = {k.decode(): v.decode() for k, v in store.scan(b"", 100)}
    store.close()
    assert local_state == {"a": "3", "b": "1"}  # the failed inputs' writes were undone

    def platform_state() -> dict[str, str]:
        return {i["key"]: i["value"] for i in fsd.ctl_json("state", "list", "-n", name)}

    wait_for(lambda: platform_state() == local_state, 30, "the platform's state")
