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
 *
 * Both buffers are grown on demand and reused, so memory use stays flat.
 */
#include <stdint.h>
#include <stdlib.h>

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
