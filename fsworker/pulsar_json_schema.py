"""The Pulsar JSON schema registered on a json output topic, made from --json-schema.

Pulsar's own JSON schema type (what ``Schema.JSON(Person.class)`` in Java and
``pulsar.schema.JsonSchema(Person)`` in Python register) is JSON payloads
described by an Avro record definition; the broker checks a typed consumer's
record against it. So the function's JSON Schema document is translated into
that Avro record:

* ``title`` names the record (else ``Record``); nested objects become nested
  records named by their title or their property name.
* ``string`` -> string, ``integer`` -> int (``long`` if its bounds or
  ``format: int64`` need it; an int is readable as long, not the reverse),
  ``number`` -> double, ``boolean`` -> boolean, ``array`` -> array of its
  ``items``, an ``enum`` of strings -> string.
* A property listed in ``required`` is not nullable; the others are
  ``["null", T]`` with default null (readers that allow null read both).
* A property with no such type (``oneOf``, no ``type``, a name Avro does not
  allow) is left out of the record: it still reaches the topic, typed
  readers do not see it. A document that is not an object with properties
  registers nothing.
"""

from __future__ import annotations

import re
from typing import Any

import _pulsar
from pulsar.schema import Schema

_AVRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT32 = (-(2**31), 2**31 - 1)
_SIMPLE = {"string": "string", "number": "double", "boolean": "boolean"}


class _Unrepresentable(Exception):
    """A JSON Schema node with no Avro form."""


def _record_name(node: dict[str, Any], fallback: str, taken: set[str]) -> str:
    raw = node.get("title") if isinstance(node.get("title"), str) else fallback
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw) or "Record"
    if not _AVRO_NAME.match(name):
        name = f"R_{name}"
    unique, n = name, 2
    while unique in taken:  # Avro allows each named type to be defined once
        unique, n = f"{name}{n}", n + 1
    taken.add(unique)
    return unique


def _integer(node: dict[str, Any]) -> str:
    if node.get("format") == "int64":
        return "long"
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = node.get(key)
        if isinstance(bound, int | float) and not _INT32[0] <= bound <= _INT32[1]:
            return "long"
    return "int"


def _avro_type(node: Any, name_hint: str, taken: set[str]) -> Any:
    """The Avro type of one JSON Schema node, without nullability."""
    if not isinstance(node, dict):
        raise _Unrepresentable
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) != 1:
            raise _Unrepresentable
        kind = kinds[0]
    if kind is None and isinstance(node.get("enum"), list):
        if node["enum"] and all(isinstance(v, str) for v in node["enum"]):
            return "string"
        raise _Unrepresentable
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "integer":
        return _integer(node)
    if kind == "array":
        return {"type": "array", "items": _avro_type(node.get("items"), name_hint, taken)}
    if kind == "object":
        return _record(node, name_hint, taken)
    raise _Unrepresentable


def _record(node: dict[str, Any], name_hint: str, taken: set[str]) -> dict[str, Any]:
    properties = node.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise _Unrepresentable
    name = _record_name(node, name_hint, taken)
    required = node.get("required") if isinstance(node.get("required"), list) else []
    fields = []
    for prop, sub in properties.items():
        if not isinstance(prop, str) or not _AVRO_NAME.match(prop):
            continue
        try:
            avro = _avro_type(sub, prop[:1].upper() + prop[1:], taken)
        except _Unrepresentable:
            continue
        if prop in required:
            fields.append({"name": prop, "type": avro})
        else:
            fields.append({"name": prop, "type": ["null", avro], "default": None})
    if not fields:
        raise _Unrepresentable
    return {"type": "record", "name": name, "fields": fields}


def avro_record_for(json_schema: dict[str, Any]) -> dict[str, Any] | None:
    """The Avro record Pulsar's JSON schema type carries; None if the document has none."""
    try:
        return _record(json_schema, "Record", set())
    except _Unrepresentable:
        return None


class JsonTextSchema(Schema):
    """A Pulsar JSON schema whose values are JSON text already (the guest's output bytes)."""

    def __init__(self, definition: dict[str, Any]) -> None:
        super().__init__(None, _pulsar.SchemaType.JSON, definition, "JSON")

    def encode(self, obj: bytes) -> bytes:
        """The payload as it is: the codec checked it is JSON."""
        return obj

    def decode(self, data: bytes) -> bytes:
        """The payload as it is."""
        return data


def pulsar_json_schema(json_schema: dict[str, Any] | None) -> JsonTextSchema | None:
    """The schema for a json output producer; None registers none (no usable definition)."""
    if json_schema is None:
        return None
    definition = avro_record_for(json_schema)
    return JsonTextSchema(definition) if definition is not None else None
