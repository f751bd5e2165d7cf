import json

import fastavro
import pytest

from fscommon.function_options import FunctionOptions
from fsworker.codec import SchemaError, input_decoder, output_encoder
from fsworker.pulsar_json_schema import avro_record_for, pulsar_json_schema

AVRO = json.dumps(
    {
        "type": "record",
        "name": "Person",
        "fields": [{"name": "name", "type": "string"}, {"name": "money", "type": "long"}],
    }
)


def _opts(**kw):
    return FunctionOptions.from_dict(kw)


def test_bytes_pass_untouched():
    assert input_decoder(_opts()) is None and output_encoder(_opts()) is None


def test_string_schema():
    dec = input_decoder(_opts(input_schema="string"))
    assert dec("héllo".encode()) == "héllo".encode()
    with pytest.raises(SchemaError, match="not UTF-8"):
        dec(b"\xff\xfe")


def test_json_schema_validation():
    schema = {"type": "object", "required": ["money"], "properties": {"money": {"type": "integer"}}}
    dec = input_decoder(_opts(input_schema="json", json_schema=schema))
    assert dec(b'{"money": 3}') == b'{"money": 3}'
    with pytest.raises(SchemaError, match="not valid JSON"):
        dec(b"{nope")
    with pytest.raises(SchemaError, match=r"at money: 'x' is not of type 'integer'"):
        dec(b'{"money": "x"}')
    with pytest.raises(SchemaError, match=r"at \(root\): 'money' is a required property"):
        dec(b"{}")
    enc = output_encoder(_opts(output_schema="json"))
    with pytest.raises(SchemaError, match="function output is not JSON"):
        enc(b"plain text")


def test_avro_roundtrip_and_errors():
    opts = _opts(input_schema="avro", output_schema="avro", avro_schema=AVRO)
    enc = output_encoder(opts)
    record = enc(b'{"name": "rbt", "money": 3}')
    assert record == {"name": "rbt", "money": 3}
    with pytest.raises(SchemaError, match="does not match the Avro schema"):
        enc(b'{"name": "rbt"}')
    from fsworker.codec import avro_schema

    wire = avro_schema(opts).encode({"name": "x", "money": 7})
    assert json.loads(input_decoder(opts)(wire)) == {"name": "x", "money": 7}
    with pytest.raises(SchemaError, match="not a valid Avro record"):
        input_decoder(opts)(b"\xff")


def test_json_output_is_checked_against_the_json_schema():
    schema = {"type": "object", "required": ["money"], "properties": {"money": {"type": "integer"}}}
    enc = output_encoder(_opts(output_schema="json", json_schema=schema))
    assert enc(b'{"money": 3, "extra": 1}') == b'{"money": 3, "extra": 1}'
    with pytest.raises(SchemaError, match=r"function output does not match the JSON Schema"):
        enc(b'{"money": "x"}')


def test_json_schema_becomes_the_avro_record_pulsar_json_schemas_carry():
    schema = {
        "title": "Person",
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "money": {"type": "integer"},
            "big": {"type": "integer", "maximum": 2**40},
            "ratio": {"type": ["number", "null"]},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"enum": ["a", "b"]},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}},
            "anything": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "bad-name": {"type": "string"},
        },
    }
    record = avro_record_for(schema)
    assert record is not None and record["name"] == "Person"
    types = {f["name"]: f["type"] for f in record["fields"]}
    assert types["name"] == "string", "required: not nullable"
    assert types["money"] == ["null", "int"]
    assert types["big"] == ["null", "long"]
    assert types["ratio"] == ["null", "double"]
    assert types["ok"] == ["null", "boolean"]
    assert types["tags"] == ["null", {"type": "array", "items": "string"}]
    assert types["kind"] == ["null", "string"]
    assert types["address"][1]["type"] == "record" and types["address"][1]["name"] == "Address"
    assert "anything" not in types and "bad-name" not in types
    fastavro.parse_schema(record)  # a valid Avro schema
    assert avro_record_for({"type": "string"}) is None
    assert pulsar_json_schema(None) is None
