//! Function Stream SDK for Zig: write one function, get a lane-1 module.
//!
//! ```zig
//! const fs = @import("function_stream");
//!
//! fn handle(ctx: *fs.Context, input: []const u8) !void {
//!     try ctx.emit(input); // zero or more records per input
//! }
//!
//! comptime {
//!     fs.exportFunction(handle);
//! }
//! ```
//!
//! `exportFunction` exports `alloc`, `process` and `process_batch` (docs/abi.md)
//! and does all the framing. The wrappers below (`state`, `config`, `log`,
//! `msg`, `output`) call the host API, imports from wasm module "fs". An
//! import is only emitted when a wrapper that uses it is referenced, so a
//! function that never touches `msg`/`output` keeps the batch fast path.
//!
//! Built and tested with Zig 0.17.1 (PyPI `ziglang==0.17.1`).

const std = @import("std");

const Allocator = std.mem.Allocator;

/// The allocator behind the SDK's buffers: wasm `memory.grow`, no imports.
const backing: Allocator = std.heap.wasm_allocator;

// ---------------------------------------------------------------------------
// The user's side

/// What the user's function gets besides its input: a scratch allocator and
/// the place to put its output records.
pub const Context = struct {
    /// Scratch memory for this input; everything allocated with it is freed
    /// (capacity kept for the next input) once the function returns.
    allocator: Allocator,

    out: *std.Io.Writer.Allocating,
    /// Offset of the open record's length field, if a record is open.
    open: ?usize = null,
    records: u32 = 0,
    failure: ?[]const u8 = null,

    /// Output one record holding `bytes` (copied).
    pub fn emit(self: *Context, bytes: []const u8) error{OutOfMemory}!void {
        const w = try self.record();
        w.writeAll(bytes) catch return error.OutOfMemory;
    }

    /// Start a new output record and return a writer for its bytes. The
    /// record ends at the next `record`/`emit` or when the function returns.
    pub fn record(self: *Context) error{OutOfMemory}!*std.Io.Writer {
        self.close();
        const w = &self.out.writer;
        self.open = w.end;
        w.writeAll(&.{ 0, 0, 0, 0 }) catch return error.OutOfMemory;
        self.records += 1;
        return w;
    }

    /// Fail this input with a message (formatted like `std.fmt.allocPrint`):
    /// `return ctx.fail("bad value: {d}", .{x});`. The input is retried and
    /// then dead-lettered with this text; records it emitted are dropped.
    pub fn fail(self: *Context, comptime fmt: []const u8, args: anytype) error{Rejected} {
        self.failure = std.fmt.allocPrint(self.allocator, fmt, args) catch fmt;
        return error.Rejected;
    }

    fn close(self: *Context) void {
        const at = self.open orelse return;
        const w = &self.out.writer;
        std.mem.writeInt(u32, w.buffer[at..][0..4], @intCast(w.end - at - 4), .little);
        self.open = null;
    }
};

/// The shape of a user function: one input, zero or more records through
/// `ctx`, or an error (the input fails with `ctx.fail`'s text or the error's
/// name). Any error set works (`!void`), and so does plain `void`.
pub const Handler = fn (ctx: *Context, input: []const u8) anyerror!void;

/// Export the lane-1 ABI (`alloc`, `process`, `process_batch`) around
/// `handler`. Call it from a `comptime` block in the root source file.
pub fn exportFunction(comptime handler: anytype) void {
    const Glue = struct {
        fn alloc(len: i32) callconv(.c) u32 {
            if (len < 0) return 0;
            const buf = glue.inputBuffer(@intCast(len)) orelse return 0;
            return @intFromPtr(buf.ptr);
        }

        fn process(ptr: [*]const u8, len: i32) callconv(.c) i64 {
            return glue.processOne(handler, ptr, len);
        }

        fn processBatch(ptr: [*]const u8, len: i32) callconv(.c) i64 {
            return glue.processBatch(handler, ptr, len);
        }
    };
    @export(&Glue.alloc, .{ .name = "alloc" });
    @export(&Glue.process, .{ .name = "process" });
    @export(&Glue.processBatch, .{ .name = "process_batch" });
}

/// The framing behind `exportFunction`; public only so it is generic over the
/// handler, not for direct use.
pub const glue = struct {
    var input: []u8 = &.{};
    var out: std.Io.Writer.Allocating = .init(backing);
    var arena: std.heap.ArenaAllocator = .init(backing);

    /// The input buffer, grown (never shrunk) to hold `len` bytes.
    fn inputBuffer(len: usize) ?[]u8 {
        if (input.len < len or input.len == 0) {
            const size = @max(len, 256, input.len * 2);
            const buf = backing.alloc(u8, size) catch return null;
            backing.free(input);
            input = buf;
        }
        return input;
    }

    fn pack(ptr: usize, len: usize) i64 {
        return @bitCast((@as(u64, @intCast(ptr)) << 32) | @as(u64, @intCast(len)));
    }

    /// Run `handler` on one input, appending its batch result (n, records or
    /// error text) to `out`. Returns false when even that ran out of memory.
    fn runOne(comptime handler: anytype, message: []const u8) bool {
        defer _ = arena.reset(.retain_capacity);
        const w = &out.writer;
        const start = w.end;
        w.writeAll(&.{ 0, 0, 0, 0 }) catch return false;
        var ctx: Context = .{ .allocator = arena.allocator(), .out = &out };
        if (call(handler, &ctx, message)) |_| {
            ctx.close();
            std.mem.writeInt(u32, w.buffer[start..][0..4], ctx.records, .little);
        } else |err| {
            w.end = start; // drop the records it emitted before failing
            const text = ctx.failure orelse @errorName(err);
            w.writeAll(&.{ 0xff, 0xff, 0xff, 0xff }) catch return false;
            var len: [4]u8 = undefined;
            std.mem.writeInt(u32, &len, @intCast(text.len), .little);
            w.writeAll(&len) catch return false;
            w.writeAll(text) catch return false;
        }
        return true;
    }

    /// The handler's result as an error union, whether it returns `void` or `!void`.
    fn call(comptime handler: anytype, ctx: *Context, message: []const u8) anyerror!void {
        return handler(ctx, message);
    }

    fn processOne(comptime handler: anytype, ptr: [*]const u8, len: i32) i64 {
        if (len < 0) return -1;
        out.writer.end = 0;
        if (!runOne(handler, ptr[0..@intCast(len)])) return -1;
        const res = out.writer.buffer[0..out.writer.end];
        const n: i32 = @bitCast(res[0..4].*);
        // process() returns one record at most; with process_batch exported
        // the host never calls it for a function that emits more.
        return switch (n) {
            0 => 0,
            1 => pack(@intFromPtr(res.ptr) + 8, res.len - 8),
            else => -1,
        };
    }

    fn processBatch(comptime handler: anytype, ptr: [*]const u8, len: i32) i64 {
        if (len < 4) return -1;
        const in = ptr[0..@intCast(len)];
        out.writer.end = 0;
        const count = std.mem.readInt(u32, in[0..4], .little);
        var off: usize = 4;
        var i: u32 = 0;
        while (i < count) : (i += 1) {
            if (in.len - off < 4) return -1;
            const size = std.mem.readInt(u32, in[off..][0..4], .little);
            off += 4;
            if (size > in.len - off) return -1;
            if (!runOne(handler, in[off..][0..size])) return -1;
            off += size;
        }
        if (off != in.len) return -1;
        if (out.writer.end == 0) return 0; // no inputs: nothing to point at
        return pack(@intFromPtr(out.writer.buffer.ptr), out.writer.end);
    }
};

// ---------------------------------------------------------------------------
// Host API, version 1 (docs/abi.md). Every import returns nothing; results
// go to out-pointers. A bad argument or a refused state operation traps.

const host = struct {
    extern "fs" fn state_get(key: [*]const u8, key_len: usize, buf: [*]u8, cap: usize, out_len: *i32) void;
    extern "fs" fn state_put(key: [*]const u8, key_len: usize, value: [*]const u8, value_len: usize) void;
    extern "fs" fn state_delete(key: [*]const u8, key_len: usize) void;
    extern "fs" fn state_add(key: [*]const u8, key_len: usize, delta: i64, out: *i64) void;
    extern "fs" fn config_get(key: [*]const u8, key_len: usize, buf: [*]u8, cap: usize, out_len: *i32) void;
    extern "fs" fn log(level: i32, msg: [*]const u8, len: usize) void;
    extern "fs" fn msg_key(buf: [*]u8, cap: usize, out_len: *i32) void;
    extern "fs" fn msg_property(name: [*]const u8, name_len: usize, buf: [*]u8, cap: usize, out_len: *i32) void;
    extern "fs" fn msg_event_time(out: *i64) void;
    extern "fs" fn set_output_key(key: [*]const u8, len: usize) void;
    extern "fs" fn set_output_property(name: [*]const u8, name_len: usize, value: [*]const u8, value_len: usize) void;
    extern "fs" fn set_output_event_time(ms: i64) void;
};

/// Read a value with the host's value convention: `read(buf, cap, &len)`
/// writes min(len, cap) bytes and the full length (-1: missing). Returns a
/// copy owned by `allocator`, or null when the value is missing.
fn readValue(allocator: Allocator, read: anytype) Allocator.Error!?[]u8 {
    var small: [256]u8 = undefined;
    var len: i32 = -1;
    read.call(&small, small.len, &len);
    if (len < 0) return null;
    if (len <= small.len) return try allocator.dupe(u8, small[0..@intCast(len)]);
    var buf = try allocator.alloc(u8, @intCast(len));
    while (true) { // the value may change between the two calls: loop
        read.call(buf.ptr, buf.len, &len);
        if (len < 0) return null;
        if (len <= buf.len) return buf[0..@intCast(len)];
        buf = try allocator.realloc(buf, @intCast(len));
    }
}

/// This function's key-value store, shared by its replicas; what a message
/// writes is committed with it, or dropped when it fails.
pub const state = struct {
    /// The value of `key` (owned by `allocator`), or null when it is missing.
    pub fn get(allocator: Allocator, key: []const u8) Allocator.Error!?[]u8 {
        const Read = struct {
            key: []const u8,
            fn call(r: @This(), buf: [*]u8, cap: usize, len: *i32) void {
                host.state_get(r.key.ptr, r.key.len, buf, cap, len);
            }
        };
        return readValue(allocator, Read{ .key = key });
    }

    /// Set `key` to `value` (last writer wins).
    pub fn put(key: []const u8, value: []const u8) void {
        host.state_put(key.ptr, key.len, value.ptr, value.len);
    }

    /// Remove `key` (no error when it is missing).
    pub fn delete(key: []const u8) void {
        host.state_delete(key.ptr, key.len);
    }

    /// Add `delta` to the decimal counter at `key` (missing counts as 0) and
    /// return the new value. Adds from replicas never get lost.
    pub fn add(key: []const u8, delta: i64) i64 {
        var value: i64 = 0;
        host.state_add(key.ptr, key.len, delta, &value);
        return value;
    }
};

/// The function's `--config` map (fixed for the replica's life).
pub const config = struct {
    /// The value of `key` (owned by `allocator`), or null when it is not set.
    pub fn get(allocator: Allocator, key: []const u8) Allocator.Error!?[]u8 {
        const Read = struct {
            key: []const u8,
            fn call(r: @This(), buf: [*]u8, cap: usize, len: *i32) void {
                host.config_get(r.key.ptr, r.key.len, buf, cap, len);
            }
        };
        return readValue(allocator, Read{ .key = key });
    }
};

pub const Level = enum(i32) { debug = 0, info = 1, warning = 2, err = 3 };

/// Write one line to the worker's log (debug lines show only at debug level).
pub fn log(level: Level, line: []const u8) void {
    host.log(@intFromEnum(level), line.ptr, line.len);
}

/// `log` with a format string; a line longer than 4096 bytes is cut.
pub fn logf(level: Level, comptime fmt: []const u8, args: anytype) void {
    var buf: [4096]u8 = undefined;
    var w: std.Io.Writer = .fixed(&buf);
    w.print(fmt, args) catch {};
    log(level, w.buffered());
}

/// The current input's metadata. Importing any of these (or `output`) makes
/// the host call the function one message at a time (docs/abi.md).
pub const msg = struct {
    /// The input's key (owned by `allocator`), or null when it has none.
    pub fn key(allocator: Allocator) Allocator.Error!?[]u8 {
        const Read = struct {
            fn call(_: @This(), buf: [*]u8, cap: usize, len: *i32) void {
                host.msg_key(buf, cap, len);
            }
        };
        return readValue(allocator, Read{});
    }

    /// One property of the input (owned by `allocator`), or null.
    pub fn property(allocator: Allocator, name: []const u8) Allocator.Error!?[]u8 {
        const Read = struct {
            name: []const u8,
            fn call(r: @This(), buf: [*]u8, cap: usize, len: *i32) void {
                host.msg_property(r.name.ptr, r.name.len, buf, cap, len);
            }
        };
        return readValue(allocator, Read{ .name = name });
    }

    /// The input's event time in ms since the epoch, or null when it has none.
    pub fn eventTime() ?i64 {
        var ms: i64 = 0;
        host.msg_event_time(&ms);
        return if (ms == 0) null else ms;
    }
};

/// Metadata of every output record of the current input.
pub const output = struct {
    /// The records' key (UTF-8), replacing a passed-through one.
    pub fn setKey(key: []const u8) void {
        host.set_output_key(key.ptr, key.len);
    }

    /// Add a property (UTF-8) to the records; the last value of a name wins.
    pub fn setProperty(name: []const u8, value: []const u8) void {
        host.set_output_property(name.ptr, name.len, value.ptr, value.len);
    }

    /// The records' event time (ms since the epoch, >= 0).
    pub fn setEventTime(ms: i64) void {
        host.set_output_event_time(ms);
    }
};
