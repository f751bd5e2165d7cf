"""fsctl dlq on a real broker: list without consuming, show/save, replay after a fix, purge."""

from __future__ import annotations

import json

import pytest

from tests import dead_letter_fixtures as dfx
from tests import wasm_fixtures as fx
from tests.helpers import Fsd, unique, wait_for
from tests.streams import Reader, send

pytestmark = pytest.mark.integration


def _dead_letters(fsd: Fsd, name: str, count: int) -> list[dict]:
    """The dead letters, once there are ``count`` of them (they follow the outputs)."""
    return wait_for(
        lambda: (
            (m := fsd.ctl_json("dlq", "list", "-n", name)["messages"]) and len(m) == count and m
        ),
        30,
        f"{count} dead letters of {name}",
        interval=0.3,
    )


def test_dead_letters_are_listed_saved_replayed_after_an_update_exactly_once(fsd: Fsd, pulsar_url):
    name, inp, out = unique("dlq"), unique("in"), unique("out")
    buggy = str(fx.write(fsd.workdir, "buggy", fx.ECHO))
    fixed = str(fx.write(fsd.workdir, "fixed", dfx.ECHO_ALL))
    outputs = Reader(pulsar_url, out)
    result = fsd.ctl("create", "-n", name, "-a", buggy, "-i", inp, "-o", out,
                     "--max-retries", "1", "--retry-delay-ms", "100")  # fmt: skip
    assert result.returncode == 0, result.stderr
    good = [f"good-{i}".encode() for i in range(6)]
    bad = [f"X-{i}".encode() for i in range(4)]
    send(pulsar_url, inp, good[:3] + bad + good[3:], properties={"origin": "test"})
    assert sorted(m.data() for m in outputs.wait(6)) == sorted(good)

    listed = _dead_letters(fsd, name, 4)
    assert {m["error_kind"] for m in listed} == {"trap"}
    assert {m["attempts"] for m in listed} == {2}
    assert all(m["original_topic"].endswith(f"/{inp}") and m["original_message_id"]
               for m in listed)  # fmt: skip
    # Listing consumed nothing: the same ids again.
    assert [m["id"] for m in fsd.ctl_json("dlq", "list", "-n", name)["messages"]] == [
        m["id"] for m in listed
    ]
    text = fsd.ctl("dlq", "list", "-n", name)
    assert text.returncode == 0 and "ATTEMPTS" in text.stdout and listed[0]["id"] in text.stdout

    saved = fsd.workdir / "payload.bin"
    shown = fsd.ctl("dlq", "show", "-n", name, listed[0]["id"], "--save", str(saved))
    assert shown.returncode == 0, shown.stderr
    assert saved.read_bytes() in bad and "error_kind: trap" in shown.stdout
    detail = fsd.ctl_json("dlq", "show", "-n", name, listed[0]["id"])
    assert detail["properties"]["origin"] == "test" and detail["data"].encode() in bad
    # The saved payload reproduces the failure locally, with the same kind.
    local = fsd.ctl("run", "-a", buggy, "--input", str(saved), "--input-format", "raw",
                    "--max-retries", "1", "--json")  # fmt: skip
    assert local.returncode == 1
    failure = json.loads(local.stdout.splitlines()[0])
    assert (failure["error_kind"], failure["error"], failure["attempts"]) == (
        "trap", detail["error"], 2
    )  # fmt: skip

    unknown = fsd.ctl("dlq", "show", "-n", name, "1:999999")
    assert unknown.returncode == 1 and "unknown dead-letter id(s)" in unknown.stderr
    partly = fsd.ctl("dlq", "replay", "-n", name, "--ids", f"{listed[0]['id']},1:999999")
    assert partly.returncode == 1 and "1:999999" in partly.stderr
    assert len(fsd.ctl_json("dlq", "list", "-n", name)["messages"]) == 4  # nothing replayed

    assert fsd.ctl("update", "-n", name, "-a", fixed).returncode == 0
    dry = fsd.ctl_json("dlq", "replay", "-n", name, "--all", "--dry-run")
    assert dry["dry_run"] and len(dry["replayed"]) == 4
    assert len(fsd.ctl_json("dlq", "list", "-n", name)["messages"]) == 4

    replayed = fsd.ctl_json("dlq", "replay", "-n", name, "--all")
    assert sorted(m["id"] for m in replayed["replayed"]) == sorted(m["id"] for m in listed)
    again = outputs.wait(10)[6:]
    assert sorted(m.data() for m in again) == sorted(bad)  # each one exactly once more
    props = again[0].properties()
    assert props["origin"] == "test" and props["fs-replayed-from"] in {m["id"] for m in listed}
    assert "fs-error-kind" not in props
    assert outputs.more_within(2.0) == []
    assert fsd.ctl_json("dlq", "list", "-n", name)["messages"] == []
    outputs.close()


def test_purge_needs_yes_and_empties_the_dead_letter_topic(fsd: Fsd, pulsar_url):
    name, inp = unique("purge"), unique("in")
    wasm = str(fx.write(fsd.workdir, "echo", fx.ECHO))
    result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "--max-retries", "0")
    assert result.returncode == 0, result.stderr
    send(pulsar_url, inp, [b"X-1", b"E-2", b"fine"])
    kinds = sorted(m["error_kind"] for m in _dead_letters(fsd, name, 2))
    assert kinds == ["error", "trap"]
    refused = fsd.ctl("dlq", "purge", "-n", name)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert fsd.ctl_json("dlq", "purge", "-n", name, "--yes")["purged"] == 2
    assert fsd.ctl_json("dlq", "list", "-n", name)["messages"] == []
    missing = fsd.ctl("dlq", "list", "-n", unique("nosuch"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_any_cluster_member_answers_for_dead_letters(workdir, pulsar_url):
    cluster = unique("cl")
    members = []
    for member in ("a", "b"):
        path = workdir / member
        path.mkdir()
        members.append(Fsd(path, pulsar_url, extra=["--cluster", cluster, "--member-id", member,
                                                    "--member-timeout", "3",
                                                    "--member-heartbeat", "0.5"]))  # fmt: skip
    try:
        for fsd in members:
            fsd.start()
        a, b = members
        wait_for(lambda: a.ctl_json("members").get("leader_id"), 30, "a leader")
        name, inp = unique("cldlq"), unique("in")
        wasm = str(fx.write(workdir, "echo", fx.ECHO))
        result = a.ctl("create", "-n", name, "-a", wasm, "-i", inp, "--max-retries", "0")
        assert result.returncode == 0, result.stderr
        send(pulsar_url, inp, [b"X-cluster"])
        (dead,) = _dead_letters(b, name, 1)  # asked of the other member
        assert dead["error_kind"] == "trap"
        assert a.ctl_json("dlq", "purge", "-n", name, "--yes")["purged"] == 1
        assert b.ctl_json("dlq", "list", "-n", name)["messages"] == []
    finally:
        for fsd in members:
            if fsd.proc is not None and fsd.proc.poll() is None:
                fsd.stop()
