/*
 * function_stream.h - the Function Stream SDK for C: one header, nothing to link.
 *
 * Write one function and name it in FS_FUNCTION:
 *
 *     #include "function_stream.h"
 *
 *     static int upper(const uint8_t *in, size_t len, fs_out *out)
 *     {
 *         if (len == 0)
 *             return fs_fail(out, "empty input");
 *         uint8_t *rec = fs_emit_reserve(out, len);   // or fs_emit(out, data, len)
 *         if (rec == NULL)
 *             return fs_fail(out, "out of memory");
 *         for (size_t i = 0; i < len; i++)
 *             rec[i] = (in[i] >= 'a' && in[i] <= 'z') ? in[i] - 32 : in[i];
 *         return 0;
 *     }
 *     FS_FUNCTION(upper)
 *
 * and build a WASI reactor:
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all -o f.wasm f.c
 *
 * The function gets each input message and emits zero or more output records
 * (zero filters the message out), or fails the input with a reason: the
 * message is retried and then dead-lettered with that text. FS_FUNCTION
 * defines the module's exports (docs/abi.md, lane 1): `alloc`, `process` and
 * `process_batch`, so the host uses the batch fast path (one call per up to
 * 256 messages). Buffers are reused between calls; memory stays flat.
 *
 * The host API (state, config, log, message metadata) is below: plain imports
 * from wasm module "fs" whose results go to out-pointers, plus helpers that
 * grow a buffer and read again when a value is bigger than it. A bad pointer or
 * a failed state operation traps: the input fails with kind "trap" and its
 * state writes are discarded.
 *
 * Define FS_NO_FUNCTION before including this header in a second .c file of
 * the same module, so the exports are defined only once.
 */
#ifndef FUNCTION_STREAM_H
#define FUNCTION_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FS_IMPORT(name) __attribute__((import_module("fs"), import_name(name)))
#define FS_EXPORT(name) __attribute__((export_name(name), visibility("default")))

/* ---- host API, version 1 ------------------------------------------------ */

/* State: this function's key-value store (committed before the input is acked).
 * Reads write min(len, cap) bytes to buf and the full length to *out_len, or
 * -1 when the key is missing (a missing key is not an empty value). */
FS_IMPORT("state_get")
void fs_state_get(const void *key, size_t key_len, void *buf, size_t cap, int32_t *out_len);
FS_IMPORT("state_put")
void fs_state_put(const void *key, size_t key_len, const void *value, size_t value_len);
FS_IMPORT("state_delete")
void fs_state_delete(const void *key, size_t key_len);
/* Adds delta to a decimal-integer value (missing = 0); the new value goes to *out.
 * Applied as a delta, so replicas sharing a key never lose an increment. */
FS_IMPORT("state_add")
void fs_state_add(const void *key, size_t key_len, int64_t delta, int64_t *out);

/* The function's --config map. */
FS_IMPORT("config_get")
void fs_config_get(const void *key, size_t key_len, void *buf, size_t cap, int32_t *out_len);

/* One line into the replica's log (with function and replica). */
enum { FS_DEBUG = 0, FS_INFO = 1, FS_WARNING = 2, FS_ERROR = 3 };
FS_IMPORT("log")
void fs_log(int32_t level, const void *msg, size_t len);

/* The current input's metadata, and the metadata of its outputs. Importing any
 * of these makes the host call the function one message at a time. */
FS_IMPORT("msg_key")
void fs_msg_key(void *buf, size_t cap, int32_t *out_len);
FS_IMPORT("msg_property")
void fs_msg_property(const void *name, size_t name_len, void *buf, size_t cap, int32_t *out_len);
FS_IMPORT("msg_event_time")
void fs_msg_event_time(int64_t *out_ms);
FS_IMPORT("set_output_key")
void fs_set_output_key(const void *key, size_t len);
FS_IMPORT("set_output_property")
void fs_set_output_property(const void *name, size_t name_len, const void *value,
                            size_t value_len);
FS_IMPORT("set_output_event_time")
void fs_set_output_event_time(int64_t ms);

/* ---- host API helpers --------------------------------------------------- */

static inline void fs_log_str(int32_t level, const char *msg)
{
    fs_log(level, msg, strlen(msg));
}

static inline int64_t fs_state_add_str(const char *key, int64_t delta)
{
    int64_t value;
    fs_state_add(key, strlen(key), delta, &value);
    return value;
}

static inline void fs_state_put_str(const char *key, const char *value)
{
    fs_state_put(key, strlen(key), value, strlen(value));
}

/* Grow *buf (realloc; *cap is its size) until the value read by `read` fits.
 * Returns the value's length, -1 when it is missing, -2 when out of memory. */
#define FS__READ_GROWING(read_call)                                                     \
    do {                                                                                \
        int32_t len_;                                                                   \
        read_call;                                                                      \
        while (len_ >= 0 && (size_t)len_ > *cap) { /* it may change in between: loop */ \
            char *p_ = realloc(*buf, (size_t)len_);                                     \
            if (p_ == NULL)                                                             \
                return -2;                                                              \
            *buf = p_;                                                                  \
            *cap = (size_t)len_;                                                        \
            read_call;                                                                  \
        }                                                                               \
        return len_;                                                                    \
    } while (0)

/* Read a state value into *buf, growing it as needed. */
static inline int32_t fs_get_state(const void *key, size_t key_len, char **buf, size_t *cap)
{
    FS__READ_GROWING(fs_state_get(key, key_len, *buf, *cap, &len_));
}

/* Read a config value into *buf, growing it as needed. */
static inline int32_t fs_get_config(const char *key, char **buf, size_t *cap)
{
    FS__READ_GROWING(fs_config_get(key, strlen(key), *buf, *cap, &len_));
}

/* Read the current input's key into *buf, growing it as needed. */
static inline int32_t fs_get_msg_key(char **buf, size_t *cap)
{
    FS__READ_GROWING(fs_msg_key(*buf, *cap, &len_));
}

/* Read a property of the current input into *buf, growing it as needed. */
static inline int32_t fs_get_msg_property(const char *name, char **buf, size_t *cap)
{
    FS__READ_GROWING(fs_msg_property(name, strlen(name), *buf, *cap, &len_));
}

/* ---- the function's outputs -------------------------------------------- */

/* Where a function writes its results for one input (opaque; use the calls below). */
typedef struct fs_out {
    char *buf;      /* the whole call's output, reused between calls */
    size_t cap;
    size_t used;
    size_t start;   /* where this input's result begins (its i32 n) */
    size_t last;    /* where the last record's u32 length is */
    int32_t count;  /* records emitted for this input */
    int failed;
} fs_out;

#define FS_FAIL (-1)

/* Make out->buf hold at least need bytes; 0 on success, -1 when out of memory. */
static inline int fs__reserve(fs_out *out, size_t need)
{
    if (out->cap >= need)
        return 0;
    size_t n = out->cap ? out->cap : 1024;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    char *p = realloc(out->buf, n);
    if (p == NULL)
        return -1;
    out->buf = p;
    out->cap = n;
    return 0;
}

static inline void fs__put_u32(char *p, uint32_t v) { memcpy(p, &v, 4); }

static inline uint32_t fs__get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* wasm32 is little-endian, like the framing */
    return v;
}

/* Append one output record of len bytes and return where to write it (valid
 * until the next fs_emit*), or NULL when out of memory. */
static inline uint8_t *fs_emit_reserve(fs_out *out, size_t len)
{
    if (len > UINT32_MAX || fs__reserve(out, out->used + 4 + len))
        return NULL;
    fs__put_u32(out->buf + out->used, (uint32_t)len);
    out->last = out->used;
    uint8_t *rec = (uint8_t *)out->buf + out->used + 4;
    out->used += 4 + len;
    out->count++;
    return rec;
}

/* Shorten the record fs_emit_reserve just returned to len bytes (reserve an
 * upper bound, write, then say how much was written). */
static inline void fs_emit_shrink(fs_out *out, size_t len)
{
    size_t reserved = out->used - out->last - 4;
    if (len < reserved) {
        out->used -= reserved - len;
        fs__put_u32(out->buf + out->last, (uint32_t)len);
    }
}

/* Append one output record (copied). Returns 0, or -1 when out of memory. */
static inline int fs_emit(fs_out *out, const void *data, size_t len)
{
    uint8_t *rec = fs_emit_reserve(out, len);
    if (rec == NULL)
        return -1;
    memcpy(rec, data, len);
    return 0;
}

/* Fail this input: drop what it emitted and record why. Returns FS_FAIL, so a
 * function can `return fs_fail(out, "...");`. */
static inline int fs_fail(fs_out *out, const char *why)
{
    size_t n = strlen(why);
    out->used = out->start + 4;
    out->count = 0;
    out->failed = 1;
    if (n > 4096)
        n = 4096; /* a reason, not a payload */
    if (fs__reserve(out, out->used + 4 + n) == 0) {
        fs__put_u32(out->buf + out->used, (uint32_t)n);
        memcpy(out->buf + out->used + 4, why, n);
        out->used += 4 + n;
    } else {
        fs__put_u32(out->buf + out->used, 0);
        out->used += 4;
    }
    return FS_FAIL;
}

typedef int (*fs_function)(const uint8_t *in, size_t len, fs_out *out);

/* Run fn on one input, appending `i32 n` and its records (or the failure). */
static inline int fs__run_one(fs_function fn, const uint8_t *in, size_t len, fs_out *out)
{
    if (fs__reserve(out, out->used + 4))
        return -1;
    out->start = out->used;
    out->used += 4;
    out->count = 0;
    out->failed = 0;
    int rc = fn(in, len, out);
    if (rc != 0 && !out->failed)
        fs_fail(out, "the function failed");
    fs__put_u32(out->buf + out->start, out->failed ? (uint32_t)-1 : (uint32_t)out->count);
    return 0;
}

static inline int64_t fs__packed(const void *ptr, size_t len)
{
    return (int64_t)(((uint64_t)(uintptr_t)ptr << 32) | (uint64_t)(uint32_t)len);
}

/* The ABI glue for one function. `process` serves inputs with at most one
 * record; the host calls `process_batch` whenever the module exports it. */
#ifndef FS_NO_FUNCTION
#define FS_FUNCTION(fn)                                                              \
    static char *fs__in;                                                             \
    static size_t fs__in_cap;                                                        \
    static fs_out fs__out;                                                           \
                                                                                     \
    FS_EXPORT("alloc") int32_t fs__alloc(int32_t len)                                \
    {                                                                                \
        size_t need = len > 0 ? (size_t)len : 1;                                     \
        if (len < 0)                                                                 \
            return 0;                                                                \
        if (need > fs__in_cap) {                                                     \
            char *p = realloc(fs__in, need);                                         \
            if (p == NULL)                                                           \
                return 0;                                                            \
            fs__in = p;                                                              \
            fs__in_cap = need;                                                       \
        }                                                                            \
        return (int32_t)(uintptr_t)fs__in;                                           \
    }                                                                                \
                                                                                     \
    FS_EXPORT("process") int64_t fs__process(int32_t ptr, int32_t len)               \
    {                                                                                \
        fs__out.used = 0;                                                            \
        if (len < 0 || fs__run_one(fn, (const uint8_t *)(uintptr_t)ptr, (size_t)len, \
                                   &fs__out))                                        \
            return -1;                                                               \
        int32_t n;                                                                   \
        memcpy(&n, fs__out.buf, 4);                                                  \
        if (n < 0 || n > 1)                                                          \
            return -1;                                                               \
        if (n == 0)                                                                  \
            return fs__packed(fs__out.buf, 0);                                       \
        return fs__packed(fs__out.buf + 8, fs__get_u32((uint8_t *)fs__out.buf + 4)); \
    }                                                                                \
                                                                                     \
    FS_EXPORT("process_batch") int64_t fs__process_batch(int32_t ptr, int32_t len)   \
    {                                                                                \
        const uint8_t *in = (const uint8_t *)(uintptr_t)ptr;                         \
        size_t size = (size_t)len, off = 4;                                          \
        if (len < 4)                                                                 \
            return -1;                                                               \
        uint32_t count = fs__get_u32(in);                                            \
        fs__out.used = 0;                                                            \
        for (uint32_t i = 0; i < count; i++) {                                       \
            if (size - off < 4)                                                      \
                return -1;                                                           \
            uint32_t rec_len = fs__get_u32(in + off);                                \
            off += 4;                                                                \
            if (rec_len > size - off)                                                \
                return -1;                                                           \
            if (fs__run_one(fn, in + off, rec_len, &fs__out))                        \
                return -1;                                                           \
            off += rec_len;                                                          \
        }                                                                            \
        if (off != size)                                                             \
            return -1;                                                               \
        return fs__packed(fs__out.buf, fs__out.used);                                \
    }
#endif /* FS_NO_FUNCTION */

#endif /* FUNCTION_STREAM_H */
