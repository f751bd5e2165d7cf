/*
 * basic.c - the "basic" Function Stream example in C, on sdks/c/function_stream.h.
 *
 * Input: a JSON Person, e.g. {"name":"rbt","money":2}; output the same person
 * with money + 1: {"name":"rbt","money":3,"expected":0}. Malformed input fails
 * (it is retried, then dead-lettered with the reason). See person.h.
 */
#include "function_stream.h"
#include "person.h"

static const char malformed[] =
    "malformed input: expected {\"name\":string,\"money\":int[,\"expected\":int]}";

static int basic(const uint8_t *in, size_t len, fs_out *out)
{
    struct person p;
    if (person_parse((const char *)in, len, &p) || person_apply(&p))
        return fs_fail(out, malformed);
    uint8_t *rec = fs_emit_reserve(out, person_out_size(&p));
    if (rec == NULL)
        return fs_fail(out, "out of memory");
    /* person_out_size is an upper bound: keep what was written. */
    fs_emit_shrink(out, person_format(&p, (char *)rec));
    return 0;
}

FS_FUNCTION(basic)
