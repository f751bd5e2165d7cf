/*
 * example_basic_stdio.c - Function Stream "basic" example as a WASI command.
 *
 * Reads one input message (a JSON Person) from stdin, writes the result to
 * stdout without a trailing newline and exits 0.  On malformed input an
 * error line goes to stderr and the exit status is 1.
 */
#include <stdio.h>
#include <stdlib.h>

#include "person.h"

static int fail(const char *msg)
{
    fputs("example_basic_stdio: ", stderr);
    fputs(msg, stderr);
    fputc('\n', stderr);
    return 1;
}

int main(void)
{
    size_t cap = 4096, len = 0, n;
    char *in = malloc(cap);
    struct person p;

    if (in == NULL)
        return fail("out of memory");
    while ((n = fread(in + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len == cap) {
            char *bigger = realloc(in, cap * 2);
            if (bigger == NULL)
                return fail("out of memory");
            in = bigger;
            cap *= 2;
        }
    }
    if (ferror(stdin))
        return fail("cannot read stdin");

    if (person_parse(in, len, &p) || person_apply(&p))
        return fail("malformed input: expected {\"name\":string,\"money\":int[,\"expected\":int]}");

    char *out = malloc(person_out_size(&p));
    if (out == NULL)
        return fail("out of memory");
    n = person_format(&p, out);
    if (fwrite(out, 1, n, stdout) != n || fflush(stdout) != 0)
        return fail("cannot write stdout");
    return 0;
}
