/*
 * person.h - shared logic of the "basic" Function Stream example.
 *
 * Input:  a JSON object describing a Person, e.g. {"name":"rbt","money":2}
 *         Keys may appear in any order, whitespace is allowed, "expected" is
 *         optional and unknown keys are ignored.  "name" must be a string,
 *         "money" and "expected" must be integers (64-bit).
 * Output: {"name":<name>,"money":<money+1>,"expected":<expected or 0>}
 *         with no whitespace.  The name is copied verbatim, i.e. its escaped
 *         JSON text is kept exactly as it appeared in the input.
 *
 * The input buffer is NOT required to be NUL-terminated; the parser never
 * reads beyond in[len - 1].
 */
#ifndef FS_EXAMPLE_PERSON_H
#define FS_EXAMPLE_PERSON_H

#include <stddef.h>
#include <stdint.h>

struct person {
    const char *name;   /* raw (still escaped) text between the quotes; points into the input */
    size_t name_len;
    int64_t money;
    int64_t expected;
};

/*
 * Fixed part of the output: {"name":"","money":,"expected":} is 32 bytes,
 * plus at most 20 bytes for each of the two signed 64-bit integers.
 */
#define PERSON_OUT_FIXED 72u

/* Number of bytes person_format() may write for p. */
static inline size_t person_out_size(const struct person *p)
{
    return p->name_len + PERSON_OUT_FIXED;
}

/*
 * Parse a Person from in[0..len).  Returns 0 on success, -1 if the input is
 * malformed (not a single JSON object, "name" or "money" missing, a field of
 * the wrong type, or an integer out of range).
 */
int person_parse(const char *in, size_t len, struct person *p);

/*
 * Apply the example's transformation: money += 1.  Returns 0 on success,
 * -1 if money would overflow.
 */
int person_apply(struct person *p);

/*
 * Write the JSON encoding of p to out, which must have room for
 * person_out_size(p) bytes.  Returns the number of bytes written (no NUL).
 */
size_t person_format(const struct person *p, char *out);

#endif /* FS_EXAMPLE_PERSON_H */
