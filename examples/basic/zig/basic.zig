//! The "basic" example in Zig: a JSON person in, the same person with
//! `money + 1` out (see ../README.md for the exact rules).

const std = @import("std");
const fs = @import("function_stream");

/// A JSON integer: a number token without fraction or exponent that fits
/// i64. (std.json alone would also take "1", 1.0 and 1e0 for an i64 field.)
const Int = struct {
    value: i64,

    pub fn jsonParse(allocator: std.mem.Allocator, source: anytype, options: std.json.ParseOptions) !Int {
        const token = try source.nextAllocMax(allocator, .alloc_if_needed, options.max_value_len.?);
        const text = switch (token) {
            inline .number, .allocated_number => |slice| slice,
            else => return error.UnexpectedToken,
        };
        if (std.mem.indexOfAny(u8, text, ".eE") != null) return error.InvalidNumber;
        return .{ .value = try std.fmt.parseInt(i64, text, 10) };
    }
};

/// A JSON string, decoded (std.json alone would also take an array of bytes
/// for a []const u8 field).
const Str = struct {
    text: []const u8,

    pub fn jsonParse(allocator: std.mem.Allocator, source: anytype, options: std.json.ParseOptions) !Str {
        return switch (try source.nextAllocMax(allocator, .alloc_if_needed, options.max_value_len.?)) {
            inline .string, .allocated_string => |slice| .{ .text = slice },
            else => error.UnexpectedToken,
        };
    }
};

const Person = struct {
    name: Str,
    money: Int,
    expected: ?Int = null,
};

fn handle(ctx: *fs.Context, input: []const u8) !void {
    const person = std.json.parseFromSliceLeaky(Person, ctx.allocator, input, .{
        .duplicate_field_behavior = .use_last,
        .ignore_unknown_fields = true,
    }) catch |err| return ctx.fail(
        "malformed input ({s}): expected {{\"name\":string,\"money\":int[,\"expected\":int]}}",
        .{@errorName(err)},
    );
    const money = std.math.add(i64, person.money.value, 1) catch
        return ctx.fail("money {d} + 1 overflows a 64-bit integer", .{person.money.value});
    const expected = if (person.expected) |e| e.value else 0;

    // Keys in this order, no whitespace, non-ASCII as raw UTF-8.
    const w = try ctx.record();
    try w.writeAll("{\"name\":");
    try std.json.Stringify.encodeJsonString(person.name.text, .{}, w);
    try w.print(",\"money\":{d},\"expected\":{d}}}", .{ money, expected });
}

comptime {
    fs.exportFunction(handle);
}
