"""A json output with --json-schema registers a Pulsar JSON schema that typed consumers read."""

from __future__ import annotations

import json
import os
import urllib.request

import pulsar
import pytest
from pulsar.schema import Integer, JsonSchema, Record, String

from fscommon.logs import silent_pulsar_logger
from tests.helpers import EXAMPLES, Fsd, unique
from tests.streams import send

pytestmark = pytest.mark.integration

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")

PERSON = {
    "title": "Person",
    "type": "object",
    "required": ["name", "money"],
    "properties": {
        "name": {"type": "string"},
        "money": {"type": "integer"},
        "expected": {"type": "integer"},
    },
}


class Person(Record):
    """What a Python service that reads the output topic declares."""

    name = String()
    money = Integer()
    expected = Integer()


def _topic_schema(topic: str) -> dict:
    admin = os.environ["FS_TEST_PULSAR_ADMIN_URL"]
    url = f"{admin}/admin/v2/schemas/public/default/{topic}/schema"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def test_json_output_registers_a_json_schema_typed_consumers_read(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("jsonout"), unique("in"), unique("out")
    schema_file = fsd.workdir / "person.schema.json"
    schema_file.write_text(json.dumps(PERSON))
    result = fsd.ctl("create", "-n", name, "-a", BASIC, "-i", inp, "-o", out,
                     "--input-schema", "json", "--output-schema", "json",
                     "--json-schema", str(schema_file))  # fmt: skip
    assert result.returncode == 0, result.stderr
    fsd.wait_running(name, 1)
    send(pulsar_url, inp, [b'{"name":"rbt","money":2}'])

    client = pulsar.Client(pulsar_url, logger=silent_pulsar_logger())
    try:
        # The typed subscription is refused unless the topic carries a compatible schema.
        consumer = client.subscribe(
            out,
            unique("typed"),
            schema=JsonSchema(Person),
            initial_position=pulsar.InitialPosition.Earliest,
        )
        person = consumer.receive(timeout_millis=30_000).value()
        assert (person.name, person.money, person.expected) == ("rbt", 3, 0)
    finally:
        client.close()

    registered = _topic_schema(out)
    assert registered["type"] == "JSON", registered
    record = json.loads(registered["data"])
    assert record["type"] == "record" and record["name"] == "Person"
    assert {f["name"] for f in record["fields"]} == {"name", "money", "expected"}
