import json

import msgpack
import pytest

from fscommon.function_options import (
    DataSchema,
    FunctionOptions,
    Guarantee,
    OptionError,
    Ordering,
    PassThrough,
    Position,
    parse_size,
)


def test_defaults_are_valid_and_roundtrip():
    opts = FunctionOptions.from_dict({})
    assert opts.guarantee == "at-least-once" and opts.ordering == "none"
    assert FunctionOptions.from_dict(opts.to_dict()) == opts


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"guarantee": "exactly-once"}, "guarantee must be one of"),
        ({"ordering": "total"}, "ordering must be one of"),
        ({"max_retries": -1}, "max-retries must be an integer from 0"),
        ({"timeout_ms": 0}, "timeout-ms must be an integer from 1"),
        ({"memory_limit": 10}, "memory-limit must be an integer from 65536"),
        ({"input_pattern": "orders-.*"}, "regex over full topic names"),
        ({"input_pattern": "persistent://public/default/(("}, "is not a regex"),
        ({"pass_through": ["color"]}, "pass-through takes"),
        ({"json_schema": {"type": "object"}}, "json-schema needs --input-schema json or"),
        ({"output_schema": "avro"}, "needs --avro-schema"),
        ({"guarantee": "effectively-once"}, "effectively-once needs --ordering strict"),
        ({"bogus": 1}, "unknown option(s): bogus"),
    ],
)
def test_bad_options_name_the_option(raw, fragment):
    with pytest.raises(OptionError) as info:
        FunctionOptions.from_dict(raw)
    assert fragment in str(info.value)


def test_modes_become_enums_and_travel_as_their_words():
    raw = {
        "guarantee": "effectively-once",
        "ordering": "strict",
        "subscription_position": "latest",
        "input_schema": "string",
        "pass_through": ["key", "event-time"],
    }
    opts = FunctionOptions.from_dict(raw)
    assert opts.guarantee is Guarantee.EFFECTIVELY_ONCE and opts.ordering is Ordering.STRICT
    assert opts.subscription_position is Position.LATEST
    assert opts.input_schema is DataSchema.STRING and opts.output_schema is DataSchema.BYTES
    assert opts.pass_through == [PassThrough.KEY, PassThrough.EVENT_TIME]
    # The registry (JSON) and the wire (msgpack) carry the plain words, as before the enums.
    as_json = json.loads(json.dumps(opts.to_dict()))
    assert {k: as_json[k] for k in raw} == raw
    assert msgpack.unpackb(msgpack.packb(opts.to_dict()))["guarantee"] == "effectively-once"


def test_a_mode_of_the_wrong_type_is_an_option_error():
    with pytest.raises(OptionError, match="ordering must be one of none, key, strict, got"):
        FunctionOptions.from_dict({"ordering": ["strict"]})


def test_parse_size():
    assert parse_size("65536") == 65536
    assert parse_size("64MiB") == 64 * 1024 * 1024
    assert parse_size("64Mi") == 64 * 1024 * 1024
    assert parse_size("16M") == 16_000_000
    assert parse_size("1GiB") == 1024**3
    with pytest.raises(OptionError):
        parse_size("lots")
