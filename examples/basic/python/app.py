"""The "basic" function in Python: a JSON person with money + 1 (examples/basic/README.md)."""

import json

import function_stream as fs

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _reject_constant(name: str) -> None:
    # json.loads accepts NaN and Infinity; strict JSON does not.
    raise ValueError(f"not JSON: {name}")


def _int64(value: object, field: str) -> int:
    # bool is a subclass of int in Python: true is not an integer here.
    if type(value) is not int:
        raise ValueError(f"'{field}' must be an integer, got {json.dumps(value)[:40]}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"'{field}' does not fit in 64 bits")
    return value


def process(data: bytes) -> bytes:
    """``{"name":<name>,"money":<money+1>,"expected":<expected or 0>}``; raises when malformed."""
    person = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    if not isinstance(person, dict):
        raise ValueError("input must be one JSON object")
    if "name" not in person or "money" not in person:
        raise ValueError("input needs 'name' and 'money'")
    name = person["name"]
    if not isinstance(name, str):
        raise ValueError("'name' must be a string")
    money = _int64(person["money"], "money")
    if money == _INT64_MAX:
        raise ValueError("'money' + 1 overflows 64 bits")
    expected = person.get("expected")
    expected = 0 if expected is None else _int64(expected, "expected")
    text = json.dumps(name, ensure_ascii=False)
    return f'{{"name":{text},"money":{money + 1},"expected":{expected}}}'.encode()


WitWorld = fs.component(process)
