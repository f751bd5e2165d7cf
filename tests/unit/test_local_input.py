"""fsctl run's input formats (fsworker/local_input.py): lines, json-lines, raw."""

from __future__ import annotations

import io
import json

import pytest

from fsworker.local_input import (
    LOCAL_TOPIC,
    InputError,
    InputFormat,
    parse_json_lines,
    parse_lines,
    read_inputs,
)


def test_lines_are_messages_without_their_line_ends():
    items = list(parse_lines([b"one\n", b"two\r\n", b"\n", b"last"], "f"))
    assert [i.data for i in items] == [b"one", b"two", b"", b"last"]
    assert [i.origin for i in items] == ["f:1", "f:2", "f:3", "f:4"]
    assert items[0].key is None and items[0].properties == {} and items[0].topic == LOCAL_TOPIC


def test_a_final_newline_does_not_make_an_empty_message(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\nb\n")
    assert [i.data for i in read_inputs(str(path), InputFormat.LINES)] == [b"a", b"b"]


def test_json_lines_carry_key_properties_event_time_and_topic():
    line = json.dumps({"data": "hi", "key": "k", "properties": {"p": "1"}, "event_time": 5,
                       "topic": "t"}).encode()  # fmt: skip
    (item,) = parse_json_lines([line])
    assert (item.data, item.key, item.properties, item.event_time, item.topic) == (
        b"hi", "k", {"p": "1"}, 5, "t"
    )  # fmt: skip


def test_json_lines_take_base64_and_what_consume_prints():
    consumed = {"data": "AAE=", "encoding": "base64", "message_id": "(1,2,-1,-1)",
                "publish_time": 1, "key": None, "event_time": None, "properties": {},
                "topic": "persistent://public/default/x"}  # fmt: skip
    (item,) = parse_json_lines([json.dumps(consumed).encode(), b"   \n"])
    assert item.data == b"\x00\x01" and item.topic == "persistent://public/default/x"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"{not json", "not JSON"),
        (b'"text"', "expected a JSON object"),
        (b'{"key": "k"}', "'data'"),
        (b'{"data": 1}', "'data' must be text"),
        (b'{"data": "x", "encoding": "hex"}', "'encoding' must be utf-8 or base64"),
        (b'{"data": "!!", "encoding": "base64"}', "not valid base64"),
        (b'{"data": "x", "propertes": {}}', "unknown field(s) propertes"),
        (b'{"data": "x", "properties": {"a": 1}}', "map of text to text"),
        (b'{"data": "x", "event_time": -1}', "event_time"),
    ],
)
def test_a_bad_json_line_is_named_by_its_number(line: bytes, says: str):
    lines = [b'{"data": "fine"}', b"", line]
    with pytest.raises(InputError) as err:
        list(parse_json_lines(lines, "in.jsonl"))
    assert str(err.value).startswith("in.jsonl:3: ")
    assert says in str(err.value)


def test_raw_reads_a_file_or_each_file_of_a_directory_in_name_order(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"\x00B")
    (tmp_path / "a.json").write_bytes(b'{"x":1}\n{"y":2}\n')
    (tmp_path / "sub").mkdir()
    items = list(read_inputs(str(tmp_path), InputFormat.RAW))
    assert [i.data for i in items] == [b'{"x":1}\n{"y":2}\n', b"\x00B"]
    (one,) = read_inputs(str(tmp_path / "b.bin"), InputFormat.RAW)
    assert one.data == b"\x00B"


def test_standard_input_is_read_as_it_comes():
    stdin = io.BytesIO(b"x\ny\n")
    assert [i.data for i in read_inputs("-", InputFormat.LINES, stdin)] == [b"x", b"y"]
    assert [i.data for i in read_inputs("-", InputFormat.RAW, io.BytesIO(b"a\nb"))] == [b"a\nb"]


def test_a_missing_input_or_a_directory_for_lines_is_an_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_inputs(str(tmp_path / "nope.txt"), InputFormat.LINES)
    with pytest.raises(InputError, match="only --input-format raw"):
        read_inputs(str(tmp_path), InputFormat.JSON_LINES)
