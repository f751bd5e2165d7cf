"""Every example, in every language, through the real platform: same inputs, same outputs.

Each module is built from source (tests/conformance/toolchains.py), created
with fsctl on a real fsd and broker, fed the vectors of
tests/conformance/vectors.py, and its outputs and dead letters compared byte
for byte with the expected ones, which are the same for every language.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance import vectors
from tests.conformance.toolchains import Unavailable, build, matrix
from tests.helpers import Fsd, unique, wait_for
from tests.streams import Reader, send

pytestmark = pytest.mark.integration

NS = "persistent://public/default/"


@pytest.fixture(scope="module")
def shared_fsd(pulsar_url: str) -> Iterator[Fsd]:
    """One fsd for the whole matrix (each language gets its own function and topics)."""
    daemon = Fsd(Path(tempfile.mkdtemp(prefix="fs-conf-", dir="/tmp")), pulsar_url).start()
    yield daemon
    daemon.stop()


def _module(example: str, lang: str) -> Path:
    try:
        return build(example, lang)
    except Unavailable as exc:
        if os.environ.get("FS_REQUIRE_TOOLCHAINS") == "1":
            pytest.fail(f"{exc} (FS_REQUIRE_TOOLCHAINS=1: every toolchain must be installed)")
        pytest.skip(str(exc))


def _create(fsd: Fsd, name: str, wasm: Path, inp: str, out: str, *args: str) -> None:
    # strict ordering (one Failover consumer) and no retries keep the output order exact.
    created = fsd.ctl("create", "-n", name, "-a", str(wasm), "-i", inp, "-o", out,
                      "--ordering", "strict", "--max-retries", "0", *args)  # fmt: skip
    assert created.returncode == 0, f"create {wasm.name} failed: {created.stderr}"


EXAMPLES = matrix()


@pytest.mark.parametrize(("example", "lang"), EXAMPLES, ids=[f"{e}-{la}" for e, la in EXAMPLES])
def test_example_gives_the_same_outputs_in_every_language(
    shared_fsd: Fsd, pulsar_url: str, example: str, lang: str
) -> None:
    wasm = _module(example, lang)
    name, inp, out = unique(f"{example}-{lang}"), unique("conf-in"), unique("conf-out")
    if example == "basic":
        inputs = [given for given, _ in vectors.BASIC]
        expected = [want for _, want in vectors.BASIC if want is not None]
        failing = sorted(given for given, want in vectors.BASIC if want is None)
        extra: tuple[str, ...] = ()
    elif example == "wordcount":
        inputs = [line for line, _ in vectors.WORDCOUNT]
        expected = [record for _, records in vectors.WORDCOUNT for record in records]
        failing = []
        extra = ("--config", vectors.WORDCOUNT_CONFIG)
    else:
        pytest.fail(f"no conformance vectors for example {example!r}")

    outputs, dead = Reader(pulsar_url, out), Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
    try:
        _create(shared_fsd, name, wasm, inp, out, *extra)
        send(pulsar_url, inp, inputs)
        got = [m.data() for m in outputs.wait(len(expected), timeout=120)]
        assert got == expected, f"{lang} {example}: outputs differ"
        assert sorted(m.data() for m in dead.wait(len(failing), timeout=60)) == failing
        # Nothing beyond: no extra record, no input dead-lettered that should pass.
        assert outputs.more_within(0.5) == [] and dead.more_within(0.2) == []
        if example == "wordcount":
            for key, value in vectors.WORDCOUNT_STATE.items():
                got_value = shared_fsd.ctl("state", "get", "-n", name, key).stdout.strip()
                assert got_value == value, f"{lang} wordcount: state {key!r}"
            wait_for(
                lambda: "wordcount: empty line" in _worker_log(shared_fsd, name), 10,
                f"the {lang} guest's 'empty line' log line",
            )  # fmt: skip
    finally:
        outputs.close()
        dead.close()
        shared_fsd.ctl("delete", "-n", name)


def _worker_log(fsd: Fsd, name: str) -> str:
    return "".join(
        p.read_text(errors="replace") for p in (fsd.state_dir / "logs").glob(f"{name}.*")
    )
