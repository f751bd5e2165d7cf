"""fs-error-kind: the enum, the guest kinds and the table in docs/guarantees.md agree."""

from __future__ import annotations

import re

from fsworker.error_kinds import GUEST_KINDS, ErrorKind
from fsworker.guest import KINDS
from tests.helpers import REPO


def test_docs_list_every_kind_and_nothing_else():
    text = (REPO / "docs" / "guarantees.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `fs-error-kind` |"))
    documented = re.findall(r"`([a-z-]+)`", row.split("|")[2])
    assert documented == [kind.value for kind in ErrorKind]


def test_guest_kinds_are_the_ones_a_call_can_report():
    assert KINDS == GUEST_KINDS
    assert set(ErrorKind) - set(GUEST_KINDS) == {ErrorKind.SCHEMA, ErrorKind.CRASH}
