/*
 * probe.c - a test function that tries what a sandbox should refuse.
 *
 * Each input is one command; the output is one line saying what happened:
 *   read PATH        -> "read PATH: <contents>"       or "read PATH: error <why>"
 *   write PATH TEXT  -> "write PATH: ok"              or "write PATH: error <why>"
 *   env NAME         -> "env NAME=<value>"            or "env NAME: unset"
 *   environ          -> "environ: NAME,NAME,..."      (names only; "" if none)
 * Built twice (build.sh): probe.wasm is a Function Stream ABI reactor,
 * probe_stdio.wasm a WASI command for the stdio lane (one command on stdin).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static char out[4096];

static size_t run(char *cmd, size_t len)
{
    char path[1024];
    cmd[len] = '\0';
    while (len && (cmd[len - 1] == '\n' || cmd[len - 1] == '\r'))
        cmd[--len] = '\0';
    if (strncmp(cmd, "read ", 5) == 0) {
        snprintf(path, sizeof path, "%s", cmd + 5);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return (size_t)snprintf(out, sizeof out, "read %s: error %s", path, strerror(errno));
        int n = snprintf(out, sizeof out, "read %s: ", path);
        n += (int)fread(out + n, 1, sizeof out - (size_t)n - 1, f);
        fclose(f);
        return (size_t)n;
    }
    if (strncmp(cmd, "write ", 6) == 0) {
        char *text = strchr(cmd + 6, ' ');
        if (text == NULL)
            return (size_t)snprintf(out, sizeof out, "write: usage: write PATH TEXT");
        *text++ = '\0';
        snprintf(path, sizeof path, "%s", cmd + 6);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            return (size_t)snprintf(out, sizeof out, "write %s: error %s", path, strerror(errno));
        int ok = fputs(text, f) >= 0;
        ok = (fclose(f) == 0) && ok;
        return (size_t)snprintf(out, sizeof out, "write %s: %s", path,
                                ok ? "ok" : "error short write");
    }
    if (strncmp(cmd, "env ", 4) == 0) {
        const char *value = getenv(cmd + 4);
        if (value == NULL)
            return (size_t)snprintf(out, sizeof out, "env %s: unset", cmd + 4);
        return (size_t)snprintf(out, sizeof out, "env %s=%s", cmd + 4, value);
    }
    if (strcmp(cmd, "environ") == 0) {
        size_t n = (size_t)snprintf(out, sizeof out, "environ: ");
        for (char **e = environ; e && *e && n < sizeof out - 1; e++) {
            const char *eq = strchr(*e, '=');
            size_t name = eq ? (size_t)(eq - *e) : strlen(*e);
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%.*s",
                                  e == environ ? "" : ",", (int)name, *e);
        }
        return n < sizeof out ? n : sizeof out - 1;
    }
    return (size_t)snprintf(out, sizeof out, "unknown command: %s", cmd);
}

#ifdef PROBE_STDIO
int main(void)
{
    static char cmd[2048];
    size_t len = fread(cmd, 1, sizeof cmd - 1, stdin);
    size_t n = run(cmd, len);
    fwrite(out, 1, n, stdout);
    return 0;
}
#else
#define EXPORT(name) __attribute__((export_name(name), visibility("default")))

static char in_buf[2048];

EXPORT("alloc")
int32_t fs_alloc(int32_t len)
{
    /* One byte more for the terminating NUL that run() writes. */
    return len < 0 || (size_t)len >= sizeof in_buf ? 0 : (int32_t)(uintptr_t)in_buf;
}

EXPORT("process")
int64_t fs_process(int32_t ptr, int32_t len)
{
    if (len < 0 || (size_t)len >= sizeof in_buf)
        return -1;
    size_t n = run((char *)(uintptr_t)ptr, (size_t)len);
    return (int64_t)(((uint64_t)(uintptr_t)out << 32) | (uint64_t)(uint32_t)n);
}
#endif
