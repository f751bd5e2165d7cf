/*
 * wordcount.c - a stateful Function Stream function: counts words across messages.
 *
 * Each input is a line of text. Words are runs of ASCII letters and digits
 * (anything else separates them), lowercased. For every word occurrence the
 * function adds 1 to the state key <word> and outputs one record
 *
 *     {"word":"hello","count":3}
 *
 * with the count after this occurrence, so an input gives 0..N records; that
 * needs process_batch (docs/abi.md). Config "min_length" (default 1) skips
 * shorter words. A line without any word logs "wordcount: empty line" at info
 * level; a malformed min_length is logged once per instance and ignored.
 *
 * Exports: memory, alloc, process, process_batch (see docs/abi.md);
 * imports from "fs": state_add, config_get, log (see fs.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define EXPORT(name) __attribute__((export_name(name), visibility("default")))

/* Output buffer, input buffer and the current word: grown on demand, reused. */
static char *out_buf;
static size_t out_cap, out_used;
static char *in_buf;
static size_t in_cap;
static char *word_buf;
static size_t word_cap;

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

static void put_u32(char *p, uint32_t v) { memcpy(p, &v, 4); } /* wasm is little-endian */

static uint32_t get_u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

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

/* Append {"word":"<w>","count":<n>} as one record (u32 length + bytes). */
static int emit(const char *word, size_t len, int64_t count)
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
    size_t rec = (sizeof a - 1) + len + (sizeof b - 1) + nd + 1;
    if (reserve(&out_buf, &out_cap, out_used + 4 + rec))
        return -1;
    char *p = out_buf + out_used;
    put_u32(p, (uint32_t)rec);
    p += 4;
    memcpy(p, a, sizeof a - 1);
    p += sizeof a - 1;
    memcpy(p, word, len);
    p += len;
    memcpy(p, b, sizeof b - 1);
    p += sizeof b - 1;
    while (nd)
        *p++ = digits[--nd];
    *p = '}';
    out_used += 4 + rec;
    return 0;
}

/* The words of a line that count (long enough); with emit, count them and emit one
 * record each. Returns how many there are, or -1 when out of memory. */
static int64_t count_line(const char *line, size_t len, int count_them)
{
    long min = get_min_length();
    size_t pos = 0, start, n, words = 0;
    int64_t counted = 0;
    while ((n = next_word(line, len, &pos, &start)) > 0) {
        words++;
        if (n < (size_t)min)
            continue;
        counted++;
        if (!count_them)
            continue;
        if (reserve(&word_buf, &word_cap, n))
            return -1;
        for (size_t i = 0; i < n; i++) {
            char c = line[start + i];
            word_buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        int64_t count;
        fs_state_add(word_buf, n, 1, &count);
        if (emit(word_buf, n, count))
            return -1;
    }
    if (words == 0 && count_them)
        fs_log_str(FS_INFO, "wordcount: empty line");
    return counted;
}

/* --- the ABI --------------------------------------------------------------- */

EXPORT("alloc")
int32_t wc_alloc(int32_t len)
{
    if (len < 0 || reserve(&in_buf, &in_cap, (size_t)len))
        return 0;
    return (int32_t)(uintptr_t)in_buf;
}

static int64_t result(void)
{
    return (int64_t)(((uint64_t)(uintptr_t)out_buf << 32) | (uint64_t)(uint32_t)out_used);
}

/* One input, one call: only for lines with at most one counted word (more need
 * process_batch, which is what the host calls when the module exports it). */
EXPORT("process")
int64_t wc_process(int32_t ptr, int32_t len)
{
    const char *line = (const char *)(uintptr_t)ptr;
    if (len < 0 || (ptr == 0 && len != 0))
        return -1;
    if (count_line(line, (size_t)len, 0) > 1)
        return -1; /* before any state write */
    out_used = 0;
    if (reserve(&out_buf, &out_cap, 4) || count_line(line, (size_t)len, 1) < 0)
        return -1;
    if (out_used == 0)
        return result(); /* no record */
    /* Drop the u32 length in front of the one record. */
    memmove(out_buf, out_buf + 4, out_used - 4);
    out_used -= 4;
    return result();
}

EXPORT("process_batch")
int64_t wc_process_batch(int32_t ptr, int32_t len)
{
    const char *in = (const char *)(uintptr_t)ptr;
    size_t size = (size_t)len, off = 4;
    if (len < 4 || ptr == 0)
        return -1;
    uint32_t count = get_u32(in);
    out_used = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (size - off < 4)
            return -1;
        uint32_t rec_len = get_u32(in + off);
        off += 4;
        if (rec_len > size - off)
            return -1;
        /* i32 n, patched once the records are written */
        if (reserve(&out_buf, &out_cap, out_used + 4))
            return -1;
        size_t n_at = out_used;
        out_used += 4;
        int64_t n = count_line(in + off, rec_len, 1);
        if (n < 0)
            return -1;
        put_u32(out_buf + n_at, (uint32_t)n);
        off += rec_len;
    }
    if (off != size)
        return -1;
    return result();
}
