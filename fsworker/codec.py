"""Input and output schemas: what the guest sees, and what goes on the output topic.

Every check that can fail on a record raises SchemaError, which the loop
treats like any other failure of that message (retry, then dead letter):
a record that does not match its schema never crashes a worker.

The guest always sees bytes: the raw payload for bytes/string/json input, and
the record as JSON text for Avro input. For an Avro output the guest returns
JSON text, which is encoded with the function's Avro schema on a producer that
registers that schema, so other Pulsar clients read the topic natively. A
JSON output with --json-schema is checked against it and registered as a
Pulsar JSON schema (fsworker/pulsar_json_schema.py) for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fscommon.function_options import DataSchema, FunctionOptions


class SchemaError(Exception):
    """A record does not match its schema; the message says how."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def avro_schema(options: FunctionOptions) -> Any:
    """The pulsar-client AvroSchema for the function's Avro definition."""
    from pulsar.schema import AvroSchema

    return AvroSchema(None, schema_definition=json.loads(options.avro_schema or "{}"))


def _utf8_checker(what: str) -> Callable[[bytes], bytes]:
    """Passes UTF-8 text through; anything else is a SchemaError about ``what``."""

    def check(data: bytes) -> bytes:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SchemaError(f"{what} is not UTF-8 text: {exc}") from None
        return data

    return check


def _parse_json(data: bytes, complaint: str) -> Any:
    """The JSON document in ``data``; a SchemaError starting with ``complaint`` if none."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{complaint}: {_first_line(exc)}") from None


def _json_schema_checker(options: FunctionOptions, what: str) -> Callable[[Any], None] | None:
    """Raises SchemaError naming ``what`` when a document breaks --json-schema; None if none."""
    if options.json_schema is None:
        return None
    import jsonschema

    validator = jsonschema.Draft202012Validator(options.json_schema)

    def check(doc: Any) -> None:
        error = next(iter(validator.iter_errors(doc)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise SchemaError(f"{what} does not match the JSON Schema at {where}: {error.message}")

    return check


def input_decoder(options: FunctionOptions) -> Callable[[bytes], bytes] | None:
    """bytes -> bytes for the guest; None when the payload passes untouched (bytes)."""
    kind = options.input_schema
    if kind == DataSchema.BYTES:
        return None
    if kind == DataSchema.STRING:
        return _utf8_checker("input")
    if kind == DataSchema.JSON:
        check = _json_schema_checker(options, "input")

        def decode_json(data: bytes) -> bytes:
            doc = _parse_json(data, "input is not valid JSON")
            if check is not None:
                check(doc)
            return data

        return decode_json
    schema = avro_schema(options)

    def decode_avro(data: bytes) -> bytes:
        try:
            record = schema.decode(data)
        except Exception as exc:  # fastavro raises many types on bad bytes
            raise SchemaError(f"input is not a valid Avro record: {_first_line(exc)}") from None
        return json.dumps(record, separators=(",", ":"), default=str).encode()

    return decode_avro


def output_encoder(options: FunctionOptions) -> Callable[[bytes], Any] | None:
    """Guest output -> what the producer sends; None when bytes pass untouched."""
    kind = options.output_schema
    if kind == DataSchema.BYTES:
        return None
    if kind == DataSchema.STRING:
        return _utf8_checker("function output")
    if kind == DataSchema.JSON:
        # The output topic's registered schema comes from the same document
        # (fsworker/pulsar_json_schema.py): what typed consumers rely on is checked.
        check = _json_schema_checker(options, "function output")

        def encode_json(data: bytes) -> bytes:
            doc = _parse_json(data, "function output is not JSON")
            if check is not None:
                check(doc)
            return data

        return encode_json
    schema = avro_schema(options)

    def encode_avro(data: bytes) -> dict[str, Any]:
        try:
            record = json.loads(data)
            schema.encode(record)  # validates; the producer encodes again when sending
        except Exception as exc:
            raise SchemaError(
                f"function output does not match the Avro schema: {_first_line(exc)}"
            ) from None
        return record

    return encode_avro
