// Function Stream SDK for AssemblyScript: write one function, get a lane-1
// module (docs/abi.md).
//
//   import { Context, register } from "@function-stream/sdk";
//   export { alloc, process, process_batch } from "@function-stream/sdk";
//
//   function handle(ctx: Context, input: Uint8Array): void {
//     ctx.emit(input);              // zero or more records per input
//   }
//   register(handle);
//
// The SDK owns the exported `alloc`/`process`/`process_batch` and all framing;
// its buffers live outside the garbage-collected heap and are reused, so
// memory stays flat. The host API wrappers (`state`, `config`, `log`, `msg`,
// `output`) call imports from wasm module "fs"; AssemblyScript only emits the
// imports a program uses, so a function that never touches `msg`/`output`
// keeps the batch fast path.

// ---------------------------------------------------------------------------
// The user's side

/** Where a record's bytes go: appended straight into the output buffer. */
export class Record {
  /** Append raw bytes. */
  bytes(data: Uint8Array): Record {
    const at = reserve(data.length);
    memory.copy(at, data.dataStart, data.length);
    return this;
  }

  /** Append one byte. */
  byte(value: u8): Record {
    store<u8>(reserve(1), value);
    return this;
  }

  /** Append `text` encoded as UTF-8. */
  string(text: string): Record {
    const n = String.UTF8.byteLength(text);
    String.UTF8.encodeUnsafe(changetype<usize>(text), text.length, reserve(n));
    return this;
  }

  /** Append `value` in decimal. */
  int(value: i64): Record {
    // Digits backwards into a scratch area, then copied: no allocation.
    let mag: u64 = value < 0 ? <u64>0 - <u64>value : <u64>value;
    let at = DIGITS + 20;
    do {
      at--;
      store<u8>(at, <u8>(0x30 + mag % 10));
      mag /= 10;
    } while (mag != 0);
    if (value < 0) store<u8>(--at, 0x2d);
    const n = DIGITS + 20 - at;
    memory.copy(reserve(n), at, n);
    return this;
  }
}

const RECORD = new Record();
const DIGITS: usize = memory.data(20);

/** What the function gets besides its input: where its records go. */
export class Context {
  /** Offset of the open record's u32 length in the output, or -1. */
  open: isize = -1;
  records: u32 = 0;
  failure: string | null = null;

  /** Start a new output record; it ends at the next record or when the function returns. */
  record(): Record {
    this.close();
    this.open = <isize>outLen;
    reserve(4);
    this.records++;
    return RECORD;
  }

  /** Output one record holding `data` (copied). */
  emit(data: Uint8Array): void {
    this.record().bytes(data);
  }

  /** Output one record holding `text` as UTF-8. */
  emitString(text: string): void {
    this.record().string(text);
  }

  /**
   * Fail this input with `reason` (then return): it is retried and then
   * dead-lettered with this text, and the records it emitted are dropped.
   * A `throw` (or any trap) fails it too, but as a trap: the host then
   * rebuilds the instance.
   */
  fail(reason: string): void {
    this.failure = reason;
  }

  close(): void {
    if (this.open < 0) return;
    store<u32>(outPtr + <usize>this.open, <u32>(outLen - <usize>this.open - 4));
    this.open = -1;
  }
}

/** The shape of a user function. */
export type Handler = (ctx: Context, input: Uint8Array) => void;

let handler: Handler | null = null;

/** Make `fn` the function that handles every input. Call it once, at top level. */
export function register(fn: Handler): void {
  handler = fn;
}

// ---------------------------------------------------------------------------
// The exported ABI. The input buffer is a GC object kept alive by a global
// (the collector never moves objects), so an input is a view into it, not a
// copy. The output buffer comes from `heap`: outside the GC, reused.

const CONTEXT = new Context();
let input: ArrayBuffer = new ArrayBuffer(256);
let outPtr: usize = 0;
let outCap: usize = 0;
let outLen: usize = 0;

/** Room for `n` more output bytes; returns where they go. */
function reserve(n: usize): usize {
  const need = outLen + n;
  if (need > outCap) {
    let cap = outCap < 256 ? <usize>256 : outCap;
    while (cap < need) cap <<= 1;
    outPtr = outPtr == 0 ? heap.alloc(cap) : heap.realloc(outPtr, cap);
    outCap = cap;
  }
  const at = outPtr + outLen;
  outLen = need;
  return at;
}

/** Run the handler on the input at `ptr`/`len`, appending its batch result. */
function runOne(ptr: usize, len: u32): void {
  const start = outLen;
  reserve(4);
  const input = view(ptr, len);
  const ctx = CONTEXT;
  ctx.open = -1;
  ctx.records = 0;
  ctx.failure = null;
  const fn = handler;
  if (fn === null) {
    ctx.fail("no handler: call register(fn) in the module's entry file");
  } else {
    fn(ctx, input);
  }
  const failure = ctx.failure;
  if (failure === null) {
    ctx.close();
    store<u32>(outPtr + start, ctx.records);
    return;
  }
  outLen = start; // drop the records it emitted before failing
  const n = String.UTF8.byteLength(failure);
  const at = reserve(8 + n);
  store<i32>(at, -1);
  store<u32>(at, n, 4);
  String.UTF8.encodeUnsafe(changetype<usize>(failure), failure.length, at + 8);
}

function pack(ptr: usize, len: usize): i64 {
  return <i64>((<u64>ptr << 32) | <u64>len);
}

/** The input at `ptr`/`len` as a Uint8Array: a view when it lies in the input buffer. */
function view(ptr: usize, len: u32): Uint8Array {
  const base = changetype<usize>(input);
  if (ptr >= base && ptr + <usize>len <= base + <usize>input.byteLength) {
    return Uint8Array.wrap(input, <i32>(ptr - base), <i32>len);
  }
  const copy = new Uint8Array(len);
  memory.copy(copy.dataStart, ptr, len);
  return copy;
}

/** ABI: a buffer of `len` bytes for the next input (reused, grown as needed). */
export function alloc(len: i32): usize {
  if (len < 0) return 0;
  if (len > input.byteLength) {
    let cap = input.byteLength;
    while (cap < len) cap = cap > 0x3fffffff ? len : cap << 1;
    input = new ArrayBuffer(cap);
  }
  return changetype<usize>(input);
}

/** ABI: one input in, at most one record out; -1 when it fails. */
export function process(ptr: usize, len: i32): i64 {
  if (len < 0) return -1;
  outLen = 0;
  runOne(ptr, <u32>len);
  const n = load<i32>(outPtr);
  // With process_batch exported the host never calls process(), so a
  // function that emits several records only loses them on other hosts.
  if (n == 0) return 0;
  if (n == 1) return pack(outPtr + 8, outLen - 8);
  return -1;
}

/** ABI: u32 count, then per input u32 length + bytes; per input a result out. */
export function process_batch(ptr: usize, len: i32): i64 {
  if (len < 4) return -1;
  const end = ptr + <usize>len;
  outLen = 0;
  const count = load<u32>(ptr);
  let at = ptr + 4;
  for (let i: u32 = 0; i < count; i++) {
    if (end - at < 4) return -1;
    const size = load<u32>(at);
    at += 4;
    if (<usize>size > end - at) return -1;
    runOne(at, size);
    at += size;
  }
  if (at != end) return -1;
  return pack(outPtr, outLen);
}

// ---------------------------------------------------------------------------
// Host API, version 1 (docs/abi.md). No import returns a value: results go to
// out-pointers. A bad argument or a refused state operation traps.

@external("fs", "state_get")
declare function fs_state_get(key: usize, keyLen: usize, buf: usize, cap: usize, outLen: usize): void;
@external("fs", "state_put")
declare function fs_state_put(key: usize, keyLen: usize, value: usize, valueLen: usize): void;
@external("fs", "state_delete")
declare function fs_state_delete(key: usize, keyLen: usize): void;
@external("fs", "state_add")
declare function fs_state_add(key: usize, keyLen: usize, delta: i64, out: usize): void;
@external("fs", "config_get")
declare function fs_config_get(key: usize, keyLen: usize, buf: usize, cap: usize, outLen: usize): void;
@external("fs", "log")
declare function fs_log(level: i32, msg: usize, len: usize): void;
@external("fs", "msg_key")
declare function fs_msg_key(buf: usize, cap: usize, outLen: usize): void;
@external("fs", "msg_property")
declare function fs_msg_property(name: usize, nameLen: usize, buf: usize, cap: usize, outLen: usize): void;
@external("fs", "msg_event_time")
declare function fs_msg_event_time(out: usize): void;
@external("fs", "set_output_key")
declare function fs_set_output_key(key: usize, len: usize): void;
@external("fs", "set_output_property")
declare function fs_set_output_property(name: usize, nameLen: usize, value: usize, valueLen: usize): void;
@external("fs", "set_output_event_time")
declare function fs_set_output_event_time(ms: i64): void;

/** Scratch for out-parameters (an i64 or an i32 length). */
const SCRATCH: usize = memory.data(8, 8);

const READ_STATE: i32 = 0;
const READ_CONFIG: i32 = 1;
const READ_KEY: i32 = 2;
const READ_PROPERTY: i32 = 3;

function readOnce(what: i32, name: Uint8Array, buf: usize, cap: usize): i32 {
  const p = name.dataStart;
  const n = <usize>name.length;
  if (what == READ_STATE) fs_state_get(p, n, buf, cap, SCRATCH);
  else if (what == READ_CONFIG) fs_config_get(p, n, buf, cap, SCRATCH);
  else if (what == READ_KEY) fs_msg_key(buf, cap, SCRATCH);
  else fs_msg_property(p, n, buf, cap, SCRATCH);
  return load<i32>(SCRATCH);
}

/** The value convention: a copy of the value, or null when it is missing. */
function readValue(what: i32, name: Uint8Array): Uint8Array | null {
  let value = new Uint8Array(64);
  let len = readOnce(what, name, value.dataStart, value.length);
  while (len > value.length) { // it may change between calls: loop
    value = new Uint8Array(len);
    len = readOnce(what, name, value.dataStart, value.length);
  }
  if (len < 0) return null;
  return value.subarray(0, len);
}

function utf8(text: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(text));
}

function text(value: Uint8Array | null): string | null {
  if (value === null) return null;
  return String.UTF8.decodeUnsafe(value.dataStart, value.length);
}

/** Keys and values: a string (as UTF-8) or raw bytes. */
function bytesOf<T>(value: T): Uint8Array {
  if (isString<T>()) return utf8(changetype<string>(value));
  if (value instanceof Uint8Array) return changetype<Uint8Array>(value);
  ERROR("expected a string or a Uint8Array");
  return unreachable();
}

/** This function's key-value store, shared by its replicas; committed with the input. */
export namespace state {
  /** The value of `key` (a string or bytes), or null when it is missing. */
  export function get<K>(key: K): Uint8Array | null {
    return readValue(READ_STATE, bytesOf<K>(key));
  }

  /** The value of `key` decoded as UTF-8, or null when it is missing. */
  export function getString<K>(key: K): string | null {
    return text(get<K>(key));
  }

  /** Set `key` to `value` (each a string or bytes); last writer wins. */
  export function put<K, V>(key: K, value: V): void {
    const k = bytesOf<K>(key);
    const v = bytesOf<V>(value);
    fs_state_put(k.dataStart, k.length, v.dataStart, v.length);
  }

  /** Remove `key` (nothing happens when it is missing). */
  export function remove<K>(key: K): void {
    const k = bytesOf<K>(key);
    fs_state_delete(k.dataStart, k.length);
  }

  /** Add `delta` to the decimal counter at `key` (missing counts as 0); the new value. */
  export function add<K>(key: K, delta: i64): i64 {
    const k = bytesOf<K>(key);
    fs_state_add(k.dataStart, k.length, delta, SCRATCH);
    return load<i64>(SCRATCH);
  }
}

/** The function's `--config` map (fixed for the replica's life). */
export namespace config {
  /** The value of `key`, or null when it is not set. */
  export function get(key: string): string | null {
    return text(readValue(READ_CONFIG, utf8(key)));
  }
}

/** One line into the worker's log (debug lines show only at debug level). */
export namespace log {
  function write(level: i32, line: string): void {
    const b = utf8(line);
    fs_log(level, b.dataStart, b.length);
  }
  export function debug(line: string): void { write(0, line); }
  export function info(line: string): void { write(1, line); }
  export function warning(line: string): void { write(2, line); }
  export function error(line: string): void { write(3, line); }
}

const NO_NAME = new Uint8Array(0);

/**
 * The current input's metadata. Using any of these (or `output`) makes the
 * host call the function one message at a time (docs/abi.md).
 */
export namespace msg {
  /** The input's key, or null when it has none. */
  export function key(): string | null {
    return text(readValue(READ_KEY, NO_NAME));
  }

  /** One property of the input, or null. */
  export function property(name: string): string | null {
    return text(readValue(READ_PROPERTY, utf8(name)));
  }

  /** The input's event time in ms since the epoch; 0 when it has none. */
  export function eventTime(): i64 {
    fs_msg_event_time(SCRATCH);
    return load<i64>(SCRATCH);
  }
}

/** Metadata of every output record of the current input. */
export namespace output {
  /** The records' key, replacing a passed-through one. */
  export function setKey(key: string): void {
    const k = utf8(key);
    fs_set_output_key(k.dataStart, k.length);
  }

  /** Add a property to the records; the last value of a name wins. */
  export function setProperty(name: string, value: string): void {
    const n = utf8(name);
    const v = utf8(value);
    fs_set_output_property(n.dataStart, n.length, v.dataStart, v.length);
  }

  /** The records' event time (ms since the epoch, >= 0). */
  export function setEventTime(ms: i64): void {
    fs_set_output_event_time(ms);
  }
}
