/*
 * person.c - a tiny, bounds-checked JSON reader/writer for the Person record
 * used by the "basic" example.  See person.h.
 */
#include "person.h"

#include <string.h>

#define MAX_DEPTH 64 /* nesting limit for skipped (unknown) values */

struct cursor {
    const char *p;
    const char *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end &&
           (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static int is_hex(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Consume the character ch (after whitespace); 0 on success, -1 otherwise. */
static int expect(struct cursor *c, char ch)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return -1;
    c->p++;
    return 0;
}

/*
 * Scan a JSON string starting at the opening quote.  On success *s and *n hold
 * the raw text between the quotes (escapes untouched, but validated).
 */
static int scan_string(struct cursor *c, const char **s, size_t *n)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    const char *start = ++c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            *s = start;
            *n = (size_t)(c->p - start);
            c->p++;
            return 0;
        }
        if (ch < 0x20)
            return -1; /* raw control characters are not allowed */
        if (ch == '\\') {
            if (c->end - c->p < 2)
                return -1;
            char e = c->p[1];
            if (e == 'u') {
                if (c->end - c->p < 6)
                    return -1;
                for (int i = 2; i < 6; i++)
                    if (!is_hex(c->p[i]))
                        return -1;
                c->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return -1;
            c->p += 2;
            continue;
        }
        c->p++;
    }
    return -1; /* unterminated */
}

/* Does the literal word w start at the cursor? */
static int scan_word(struct cursor *c, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

/*
 * Scan a JSON number.  If it is a plain integer that fits in int64_t,
 * *is_int is set and *out holds its value.
 */
static int scan_number(struct cursor *c, int *is_int, int64_t *out)
{
    int neg = 0, overflow = 0, integral = 1;
    uint64_t mag = 0;
    const uint64_t limit_pos = (uint64_t)INT64_MAX;
    const uint64_t limit_neg = (uint64_t)INT64_MAX + 1u;

    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    if (c->p >= c->end || !is_digit(*c->p))
        return -1;
    if (*c->p == '0') {
        c->p++;
    } else {
        while (c->p < c->end && is_digit(*c->p)) {
            unsigned d = (unsigned)(*c->p - '0');
            if (mag > (limit_neg - d) / 10)
                overflow = 1;
            else
                mag = mag * 10 + d;
            c->p++;
        }
    }
    if (c->p < c->end && *c->p == '.') {
        integral = 0;
        c->p++;
        if (c->p >= c->end || !is_digit(*c->p))
            return -1;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        integral = 0;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || !is_digit(*c->p))
            return -1;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    if (overflow || (!neg && mag > limit_pos))
        integral = 0;
    *is_int = integral;
    if (integral)
        *out = neg ? (int64_t)(0u - mag) : (int64_t)mag;
    return 0;
}

/* Skip (and validate) any JSON value. */
static int skip_value(struct cursor *c, int depth)
{
    const char *s;
    size_t n;
    int is_int;
    int64_t v;

    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    switch (*c->p) {
    case '"':
        return scan_string(c, &s, &n);
    case 't':
        return scan_word(c, "true");
    case 'f':
        return scan_word(c, "false");
    case 'n':
        return scan_word(c, "null");
    case '{':
    case '[': {
        char close = *c->p == '{' ? '}' : ']';
        int is_obj = close == '}';
        if (depth >= MAX_DEPTH)
            return -1;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        for (;;) {
            if (is_obj) {
                skip_ws(c);
                if (scan_string(c, &s, &n) || expect(c, ':'))
                    return -1;
            }
            if (skip_value(c, depth + 1))
                return -1;
            skip_ws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == close) {
                c->p++;
                return 0;
            }
            if (*c->p != ',')
                return -1;
            c->p++;
        }
    }
    default:
        return scan_number(c, &is_int, &v);
    }
}

/* Parse an integer field value; null is accepted only if allow_null. */
static int parse_int_field(struct cursor *c, int64_t *out, int *present, int allow_null)
{
    int is_int;
    int64_t v;

    skip_ws(c);
    if (allow_null && scan_word(c, "null") == 0) {
        *present = 0;
        return 0;
    }
    if (c->p >= c->end || !(*c->p == '-' || is_digit(*c->p)))
        return -1;
    if (scan_number(c, &is_int, &v) || !is_int)
        return -1;
    *out = v;
    *present = 1;
    return 0;
}

static int key_is(const char *k, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(k, want, n) == 0;
}

int person_parse(const char *in, size_t len, struct person *p)
{
    struct cursor c = { in, in + len };
    int have_name = 0, have_money = 0, have_expected = 0;
    const char *key;
    size_t key_len;

    if (in == NULL && len != 0)
        return -1;
    p->name = NULL;
    p->name_len = 0;
    p->money = 0;
    p->expected = 0;

    if (expect(&c, '{'))
        return -1;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            skip_ws(&c);
            if (scan_string(&c, &key, &key_len) || expect(&c, ':'))
                return -1;
            skip_ws(&c);
            /* Duplicate keys: the last occurrence wins. */
            if (key_is(key, key_len, "name")) {
                if (scan_string(&c, &p->name, &p->name_len))
                    return -1;
                have_name = 1;
            } else if (key_is(key, key_len, "money")) {
                if (parse_int_field(&c, &p->money, &have_money, 0))
                    return -1;
            } else if (key_is(key, key_len, "expected")) {
                if (parse_int_field(&c, &p->expected, &have_expected, 1))
                    return -1;
                if (!have_expected)
                    p->expected = 0;
            } else if (skip_value(&c, 1)) {
                return -1;
            }
            skip_ws(&c);
            if (c.p >= c.end)
                return -1;
            if (*c.p == '}') {
                c.p++;
                break;
            }
            if (*c.p != ',')
                return -1;
            c.p++;
        }
    }
    skip_ws(&c);
    if (c.p != c.end)
        return -1; /* trailing garbage */
    if (!have_name || !have_money)
        return -1;
    return 0;
}

int person_apply(struct person *p)
{
    if (p->money == INT64_MAX)
        return -1;
    p->money += 1;
    return 0;
}

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static char *put_int(char *o, int64_t v)
{
    char tmp[20];
    int i = 0;
    uint64_t mag = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;

    if (v < 0)
        *o++ = '-';
    do {
        tmp[i++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    while (i)
        *o++ = tmp[--i];
    return o;
}

size_t person_format(const struct person *p, char *out)
{
    char *o = out;
    o = put(o, "{\"name\":\"", 9);
    o = put(o, p->name, p->name_len);
    o = put(o, "\",\"money\":", 10);
    o = put_int(o, p->money);
    o = put(o, ",\"expected\":", 12);
    o = put_int(o, p->expected);
    *o++ = '}';
    return (size_t)(o - out);
}
