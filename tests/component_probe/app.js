// The probe function of app.py, in JavaScript (tests/integration/test_component_batch.py):
// "loop" never returns, "fail" throws; "m<i>" gives one JSON record of the input's
// metadata as the function saw it, with its output key, property and event time set.
import * as fs from "../../sdks/js/function_stream.js";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function probe(data) {
  const text = decoder.decode(data);
  if (text === "loop") for (;;) {}
  if (text === "fail") throw new RangeError("fail asked");
  const seen = {
    in: text,
    key: fs.msgKey() ?? null,
    p: fs.msgProperty("p") ?? null,
    t: fs.msgEventTime() ?? null,
    count: Number(fs.stateAdd("count")),
    batched: fs.inBatch(),
  };
  fs.setOutputKey(`key-${text}`);
  fs.setOutputProperty("from", text);
  fs.setOutputEventTime(1000 + Number(text.slice(1)));
  return encoder.encode(JSON.stringify(seen));
}

export const process = fs.component(probe);
