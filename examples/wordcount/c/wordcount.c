/*
 * wordcount.c - a stateful Function Stream function: counts words across messages.
 *
 * Each input is a line of text. Words are runs of ASCII letters and digits
 * (anything else separates them), lowercased. For every word occurrence the
 * function adds 1 to the state key <word> and outputs one record
 *
 *     {"word":"hello","count":3}
 *
 * with the count after this occurrence, so an input gives 0..N records. Config
 * "min_length" (default 1) skips shorter words. A line without any word logs
 * "wordcount: empty line" at info level; a malformed min_length is logged once
 * per instance and ignored. Built on sdks/c/function_stream.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "function_stream.h"

/* The current word, lowercased: grown on demand, reused. */
static char *word_buf;
static size_t word_cap;

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The next word at or after *pos: its start in *start and its length (0: no more). */
static size_t next_word(const char *s, size_t len, size_t *pos, size_t *start)
{
    size_t i = *pos;
    while (i < len && !is_word_char(s[i]))
        i++;
    *start = i;
    while (i < len && is_word_char(s[i]))
        i++;
    *pos = i;
    return i - *start;
}

/* --- config ---------------------------------------------------------------- */

static long min_length = -1; /* read on first use */

static void log_bad_min_length(const char *value, int32_t len)
{
    static const char head[] = "wordcount: config min_length=\"";
    static const char tail[] = "\" is not an integer from 1 to 1000000; using 1";
    char msg[sizeof head + 40 + sizeof tail];
    size_t n = len > 40 ? 40 : (size_t)len;
    memcpy(msg, head, sizeof head - 1);
    memcpy(msg + sizeof head - 1, value, n);
    memcpy(msg + sizeof head - 1 + n, tail, sizeof tail - 1);
    fs_log(FS_INFO, msg, sizeof head - 1 + n + sizeof tail - 1);
}

static long get_min_length(void)
{
    if (min_length >= 0)
        return min_length;
    char *buf = NULL;
    size_t cap = 0;
    int32_t len = fs_get_config("min_length", &buf, &cap);
    min_length = 1;
    if (len >= 0) {
        long v = 0;
        int ok = len > 0 && len <= 7;
        for (int32_t i = 0; ok && i < len; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                ok = 0;
            else
                v = v * 10 + (buf[i] - '0');
        }
        if (ok && v >= 1 && v <= 1000000)
            min_length = v;
        else
            log_bad_min_length(buf, len);
    }
    free(buf);
    return min_length;
}

/* --- counting ---------------------------------------------------------------- */

/* Emit {"word":"<w>","count":<n>} as one record. */
static int emit(fs_out *out, const char *word, size_t len, int64_t count)
{
    char digits[24];
    size_t nd = 0;
    uint64_t u = count < 0 ? (uint64_t)0 - (uint64_t)count : (uint64_t)count;
    do {
        digits[nd++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (count < 0)
        digits[nd++] = '-';
    static const char a[] = "{\"word\":\"", b[] = "\",\"count\":";
    uint8_t *p = fs_emit_reserve(out, (sizeof a - 1) + len + (sizeof b - 1) + nd + 1);
    if (p == NULL)
        return -1;
    memcpy(p, a, sizeof a - 1);
    p += sizeof a - 1;
    memcpy(p, word, len);
    p += len;
    memcpy(p, b, sizeof b - 1);
    p += sizeof b - 1;
    while (nd)
        *p++ = (uint8_t)digits[--nd];
    *p = '}';
    return 0;
}

static int wordcount(const uint8_t *in, size_t len, fs_out *out)
{
    const char *line = (const char *)in;
    long min = get_min_length();
    size_t pos = 0, start, n, words = 0;
    while ((n = next_word(line, len, &pos, &start)) > 0) {
        words++;
        if (n < (size_t)min)
            continue;
        if (word_cap < n) {
            char *p = realloc(word_buf, n);
            if (p == NULL)
                return fs_fail(out, "wordcount: out of memory");
            word_buf = p;
            word_cap = n;
        }
        for (size_t i = 0; i < n; i++) {
            char c = line[start + i];
            word_buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        int64_t count;
        fs_state_add(word_buf, n, 1, &count);
        if (emit(out, word_buf, n, count))
            return fs_fail(out, "wordcount: out of memory");
    }
    if (words == 0)
        fs_log_str(FS_INFO, "wordcount: empty line");
    return 0;
}

FS_FUNCTION(wordcount)
