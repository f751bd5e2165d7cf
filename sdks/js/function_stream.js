// Function Stream SDK for JavaScript: one function, built into a WebAssembly component
// with componentize-js (lane 3, docs/abi.md; WIT: wit/function-stream.wit, world "processor").
//
//   import { component } from "function_stream.js";
//   export const process = component((data) => ...);
//
// The function gets the input as a Uint8Array and returns one output record
// (Uint8Array or string), an array of them, or null/undefined for none. Throwing
// fails the input (it is retried, then dead-lettered) with the error's text.
import * as host from "function-stream:function/host@1.0.0";

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

/** The `process` export for `fn(data: Uint8Array)`; a thrown error fails the input. */
export function component(fn) {
  return function process(input) {
    try {
      return records(fn(input));
    } catch (error) {
      // componentize-js turns a thrown value into the `err` case of the result.
      throw errorText(error);
    }
  };
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
  return host.msgKey();
}

/** A property of the current input, or undefined. */
export function msgProperty(name) {
  return host.msgProperty(name);
}

/** The current input's event time (ms since the epoch, a Number), or undefined when not set. */
export function msgEventTime() {
  const ms = host.msgEventTime();
  return ms === 0n ? undefined : Number(ms);
}

/** The key of this input's output records. */
export function setOutputKey(key) {
  host.setOutputKey(key);
}

/** A property of this input's output records. */
export function setOutputProperty(name, value) {
  host.setOutputProperty(name, value);
}

/** The event time (ms since the epoch) of this input's output records. */
export function setOutputEventTime(ms) {
  host.setOutputEventTime(BigInt(ms));
}
