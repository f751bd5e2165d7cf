/*
 * example_basic.c - Function Stream "basic" example as a WASI reactor module.
 *
 * Exports (see docs/abi.md for the full ABI):
 *   memory
 *   alloc(len: i32) -> i32          buffer of len bytes for the host to write
 *                                   the next input message into
 *   process(ptr: i32, len: i32) -> i64
 *                                   (out_ptr << 32) | out_len, or -1 if the
 *                                   input is malformed.  The output stays
 *                                   valid until the next call into the module.
 *   process_batch(ptr: i32, len: i32) -> i64
 *                                   the same for many messages in one call:
 *                                   input  u32 count, then per message
 *                                          u32 length + bytes;
 *                                   output per message an i32 n, then n
 *                                          records (u32 length + bytes), or
 *                                          for n < 0 a u32 length + error text.
 *                                   All integers little-endian.
 *
 * The buffers are grown on demand and reused, so memory use stays flat.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "person.h"

#define EXPORT(name) __attribute__((export_name(name), visibility("default")))

static char *in_buf;
static size_t in_cap;
static char *out_buf;
static size_t out_cap;

/* Make *buf hold at least need bytes; 0 on success, -1 if out of memory. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need == 0)
        need = 1;
    if (*cap >= need)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    char *p = realloc(*buf, n);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

EXPORT("alloc")
int32_t fs_alloc(int32_t len)
{
    if (len < 0 || reserve(&in_buf, &in_cap, (size_t)len))
        return 0;
    return (int32_t)(uintptr_t)in_buf;
}

EXPORT("process")
int64_t fs_process(int32_t ptr, int32_t len)
{
    struct person p;

    if (len < 0 || (ptr == 0 && len != 0))
        return -1;
    if (person_parse((const char *)(uintptr_t)ptr, (size_t)len, &p) ||
        person_apply(&p))
        return -1;
    if (reserve(&out_buf, &out_cap, person_out_size(&p)))
        return -1;
    size_t n = person_format(&p, out_buf);
    return (int64_t)(((uint64_t)(uintptr_t)out_buf << 32) | (uint64_t)(uint32_t)n);
}

static char *batch_buf;
static size_t batch_cap;

static uint32_t get_u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* wasm32 is little-endian, like the batch framing */
    return v;
}

static void put_u32(char *p, uint32_t v) { memcpy(p, &v, 4); }

static const char malformed[] =
    "malformed input: expected {\"name\":string,\"money\":int[,\"expected\":int]}";

EXPORT("process_batch")
int64_t fs_process_batch(int32_t ptr, int32_t len)
{
    const char *in = (const char *)(uintptr_t)ptr;
    size_t size = (size_t)len, off = 4, used = 0;

    if (len < 4 || ptr == 0)
        return -1;
    uint32_t count = get_u32(in);
    for (uint32_t i = 0; i < count; i++) {
        struct person p;
        if (size - off < 4)
            return -1;
        uint32_t rec_len = get_u32(in + off);
        off += 4;
        if (rec_len > size - off)
            return -1;
        const char *rec = in + off;
        off += rec_len;
        if (person_parse(rec, rec_len, &p) || person_apply(&p)) {
            /* n = -1, then the error text */
            if (reserve(&batch_buf, &batch_cap, used + 8 + sizeof malformed - 1))
                return -1;
            put_u32(batch_buf + used, (uint32_t)-1);
            put_u32(batch_buf + used + 4, sizeof malformed - 1);
            memcpy(batch_buf + used + 8, malformed, sizeof malformed - 1);
            used += 8 + sizeof malformed - 1;
            continue;
        }
        /* n = 1, then one record */
        if (reserve(&batch_buf, &batch_cap, used + 8 + person_out_size(&p)))
            return -1;
        size_t n = person_format(&p, batch_buf + used + 8);
        put_u32(batch_buf + used, 1);
        put_u32(batch_buf + used + 4, (uint32_t)n);
        used += 8 + n;
    }
    if (off != size)
        return -1;
    return (int64_t)(((uint64_t)(uintptr_t)batch_buf << 32) | (uint64_t)(uint32_t)used);
}
