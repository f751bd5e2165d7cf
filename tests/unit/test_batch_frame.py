"""The batch framing shared by lanes 1 and 3 (fsworker/batch_frame.py): pure, no guest."""

from __future__ import annotations

from fsworker import batch_frame
from fsworker.batch_frame import LANE1_EXPORT, LANE3_EXPORT, MAX_BATCH_RECORDS
from fsworker.error_kinds import ErrorKind
from fsworker.guest import GuestError


def test_encode_counts_then_length_prefixes_each_input():
    assert batch_frame.encode([b"ab", b""]) == b"\x02\0\0\0\x02\0\0\0ab\0\0\0\0"
    assert batch_frame.encode([]) == b"\0\0\0\0"


def test_decode_outcomes_and_malformed_output_name_the_export():
    out = b"\x01\0\0\0\x01\0\0\0x" + b"\xff\xff\xff\xff\x03\0\0\0bad" + b"\0\0\0\0"
    assert batch_frame.decode(out, 3, LANE3_EXPORT) == [
        [b"x"],
        GuestError(ErrorKind.ERROR, "process-batch() rejected the input (-1): bad"),
        [],
    ]
    lane1 = batch_frame.decode(out, 3)
    assert lane1[1] == GuestError(ErrorKind.ERROR, "process_batch() rejected the input (-1): bad")
    short = batch_frame.decode(out, 4, LANE3_EXPORT)
    assert [e.kind for e in short] == [ErrorKind.ABI] * 4
    assert str(short[0]).startswith("process-batch() returned malformed output: it ends")
    assert str(batch_frame.decode(out, 4)[0]).startswith(f"{LANE1_EXPORT}() returned malformed")


def test_decode_rejects_trailing_bytes_and_impossible_counts():
    extra = batch_frame.decode(b"\0\0\0\0junk", 1)
    assert [e.kind for e in extra] == [ErrorKind.ABI]
    assert "4 bytes left after the last result" in str(extra[0])
    huge = batch_frame.decode(b"\xff\xff\xff\x7f", 1)  # claims 2**31 - 1 records in 0 bytes
    assert "claims 2147483647 records" in str(huge[0])


def test_chunks_cap_records_and_bytes():
    many = [b"x"] * (MAX_BATCH_RECORDS + 1)
    assert list(batch_frame.chunks(many, 1 << 20)) == [(0, MAX_BATCH_RECORDS), (256, 257)]
    sized = [b"a" * 60, b"b" * 60, b"c" * 200, b"d"]
    assert list(batch_frame.chunks(sized, 128)) == [(0, 2), (2, 3), (3, 4)]  # big one alone
    assert list(batch_frame.chunks([], 128)) == []


def test_the_byte_cap_follows_the_memory_limit_within_bounds():
    assert batch_frame.batch_bytes_cap(None) == batch_frame.MAX_BATCH_BYTES
    assert batch_frame.batch_bytes_cap(1 << 20) == 128 << 10
    assert batch_frame.batch_bytes_cap(64 << 10) == batch_frame.MIN_BATCH_BYTES
    assert batch_frame.batch_bytes_cap(1 << 40) == batch_frame.MAX_BATCH_BYTES
