// Function Stream SDK for JavaScript: one function, built into a WebAssembly component
// with componentize-js (lane 3, docs/abi.md; WIT: wit/function-stream.wit, world "processor").
//
//   import { component } from "function_stream.js";
//   export const process = component((data) => ...);
//
// The function gets the input as a Uint8Array and returns one output record
// (Uint8Array or string), an array of them, or null/undefined for none. Throwing
// fails the input (it is retried, then dead-lettered) with the error's text.
//
// Built for world "batch-processor" (sdks/js/build-component.sh does it), the
// component also exports `processBatch`, many inputs per call of the host,
// which runs the same function once per input: the function changes nothing.
import * as host from "function-stream:function/host@1.0.0";
import { selectInput } from "function-stream:function/batch@1.0.0";

const encoder = new TextEncoder();
// Longest error text sent back to the host (it ends up in a dead-letter property).
const MAX_ERROR_CHARS = 1000;

function record(value) {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  // A typed array from the host bindings may not be `instanceof` this realm's Uint8Array.
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError(`an output record must be a Uint8Array or a string, not ${typeof value}`);
}

function records(result) {
  if (result === null || result === undefined) return [];
  if (Array.isArray(result)) return result.map(record);
  return [record(result)];
}

function errorText(error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, MAX_ERROR_CHARS);
}

// The function `component` was given last: what `processBatch` calls per input.
let registered = null;

/** The `process` export for `fn(data: Uint8Array)`; a thrown error fails the input. */
export function component(fn) {
  registered = fn;
  return function process(input) {
    try {
      return records(fn(input));
    } catch (error) {
      // componentize-js turns a thrown value into the `err` case of the result.
      throw errorText(error);
    }
  };
}

// --- the batch entry point (docs/abi.md, "The batch entry point: `process-batch`") ---

// Inside processBatch: the input being processed (undefined outside a batch), and
// the one the host last selected for metadata (every batch starts at input 0).
let batchIndex;
let selected = 0;

/** Whether the function is running inside `processBatch` (for tests and diagnostics). */
export function inBatch() {
  return batchIndex !== undefined;
}

function selectCurrentInput() {
  if (batchIndex !== undefined && batchIndex !== selected) {
    selectInput(batchIndex);
    selected = batchIndex;
  }
}

/**
 * The `processBatch` export: lane 1's batch framing in and out (u32 count, then
 * u32 length + bytes per input; per input i32 n then n records, or n = -1 and
 * the error text), the function given to `component` once per input.
 */
export function processBatch(batch) {
  if (registered === null) throw new Error("processBatch: no function (call component(fn) first)");
  const fn = registered;
  const count = u32(batch, 0);
  const results = new Array(count);
  let off = 4;
  let size = 0;
  selected = 0;
  try {
    for (let i = 0; i < count; i++) {
      const length = u32(batch, off);
      off += 4;
      // A copy, as `process` gets: the function may keep it or view its buffer.
      const data = batch.slice(off, off + length);
      off += length;
      batchIndex = i;
      let result;
      try {
        result = fn(data);
        if (result instanceof Uint8Array) {
          size += 8 + result.byteLength; // the common case: one record
        } else {
          result = records(result);
          size += 4;
          for (const rec of result) size += 4 + rec.byteLength;
        }
      } catch (error) {
        result = { error: encoder.encode(errorText(error)) }; // this input fails; the others go on
        size += 8 + result.error.byteLength;
      }
      results[i] = result;
    }
  } finally {
    batchIndex = undefined;
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (const result of results) {
    if (result instanceof Uint8Array) {
      pos = putRecord(out, putU32(out, pos, 1), result);
    } else if (Array.isArray(result)) {
      pos = putU32(out, pos, result.length);
      for (const rec of result) pos = putRecord(out, pos, rec);
    } else {
      pos = putRecord(out, putU32(out, pos, -1), result.error);
    }
  }
  return out;
}

// Little-endian u32 by hand: cheaper than a DataView in the guest's interpreter.
function u32(bytes, at) {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

function putU32(out, at, value) {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = (value >>> 24) & 0xff;
  return at + 4;
}

function putRecord(out, at, rec) {
  const start = putU32(out, at, rec.byteLength);
  out.set(rec, start);
  return start + rec.byteLength;
}

// --- state (needs a function with a state store; see docs/state.md) ----------------

/** The value of `key` (Uint8Array; this batch's writes included), or undefined. */
export function stateGet(key) {
  return host.stateGet(key);
}

/** Set `key` to `value` (a string is stored as UTF-8). */
export function statePut(key, value) {
  host.statePut(key, record(value));
}

/** Remove `key`. */
export function stateDelete(key) {
  host.stateDelete(key);
}

/** Add `delta` (default 1) to the decimal integer stored at `key`; the new value (a BigInt). */
export function stateAdd(key, delta = 1n) {
  return host.stateAdd(key, BigInt(delta));
}

// --- config and log ------------------------------------------------------------------

/** A value of the function's --config map, or undefined. */
export function configGet(key) {
  return host.configGet(key);
}

/** One line in the replica's log; `level` is debug, info, warning or error. */
export function log(message, level = "info") {
  host.log(level, String(message));
}

// --- message metadata ------------------------------------------------------------------

/** The current input's key, or undefined. */
export function msgKey() {
  selectCurrentInput();
  return host.msgKey();
}

/** A property of the current input, or undefined. */
export function msgProperty(name) {
  selectCurrentInput();
  return host.msgProperty(name);
}

/** The current input's event time (ms since the epoch, a Number), or undefined when not set. */
export function msgEventTime() {
  selectCurrentInput();
  const ms = host.msgEventTime();
  return ms === 0n ? undefined : Number(ms);
}

/** The key of this input's output records. */
export function setOutputKey(key) {
  selectCurrentInput();
  host.setOutputKey(key);
}

/** A property of this input's output records. */
export function setOutputProperty(name, value) {
  selectCurrentInput();
  host.setOutputProperty(name, value);
}

/** The event time (ms since the epoch) of this input's output records. */
export function setOutputEventTime(ms) {
  selectCurrentInput();
  host.setOutputEventTime(BigInt(ms));
}
