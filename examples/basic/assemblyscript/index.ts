// The "basic" example in AssemblyScript: a JSON person in, the same person
// with money + 1 out (see ../README.md for the exact rules).
import { Context, Record, register } from "@function-stream/sdk";
import { PersonReader } from "./person";

// The module's exports come from the SDK.
export { alloc, process, process_batch } from "@function-stream/sdk";

const HEX = "0123456789abcdef";
const reader = new PersonReader();

/** `bytes` (UTF-8) as a JSON string: `"` and `\` escaped, control characters
 * as \n-style or \u00XX escapes, everything else (non-ASCII too) raw. */
function jsonString(out: Record, bytes: Uint8Array): void {
  out.byte(0x22);
  for (let i = 0; i < bytes.length; i++) {
    const c = unchecked(bytes[i]);
    if (c == 0x22 || c == 0x5c) out.byte(0x5c).byte(c);
    else if (c >= 0x20) out.byte(c);
    else if (c == 0x08) out.string("\\b");
    else if (c == 0x0c) out.string("\\f");
    else if (c == 0x0a) out.string("\\n");
    else if (c == 0x0d) out.string("\\r");
    else if (c == 0x09) out.string("\\t");
    else out.string("\\u00").byte(<u8>HEX.charCodeAt(c >> 4)).byte(<u8>HEX.charCodeAt(c & 15));
  }
  out.byte(0x22);
}

function handle(ctx: Context, input: Uint8Array): void {
  const person = reader.read(input);
  if (person === null) {
    ctx.fail(
      'malformed input (' + reader.error! + '): expected {"name":string,"money":int[,"expected":int]}',
    );
    return;
  }
  if (person.money == i64.MAX_VALUE) {
    ctx.fail("money " + person.money.toString() + " + 1 overflows a 64-bit integer");
    return;
  }
  const out = ctx.record();
  out.string('{"name":');
  jsonString(out, person.name.view());
  out.string(',"money":').int(person.money + 1);
  out.string(',"expected":').int(person.expected).byte(0x7d);
}

register(handle);
