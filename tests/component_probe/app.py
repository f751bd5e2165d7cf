"""A probe function for the component tests (tests/integration/test_component_batch.py).

By the input text: ``abort`` traps (os.abort), ``loop`` never returns (the time
limit stops it), ``fail`` raises; anything else, ``m<i>``, gives one JSON record
of what the function saw of its input's metadata, with its output records'
key, property ``from`` and event time set from the input.
"""

import json
import os

import function_stream as fs


def process(data: bytes) -> bytes:
    text = data.decode()
    if text == "abort":
        os.abort()
    if text == "loop":
        while True:
            pass
    if text == "fail":
        raise ValueError("fail asked")
    seen = {
        "in": text,
        "key": fs.msg_key(),
        "p": fs.msg_property("p"),
        "t": fs.msg_event_time(),
        "count": fs.state_add("count"),
        # Which entry point ran this input (the SDK's own bookkeeping).
        "batched": fs._batch_index is not None,
    }
    fs.set_output_key(f"key-{text}")
    fs.set_output_property("from", text)
    fs.set_output_event_time(1000 + int(text[1:]))
    return json.dumps(seen).encode()


WitWorld = fs.component(process)
