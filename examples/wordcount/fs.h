/*
 * fs.h - the Function Stream host API, version 1, for C (see docs/abi.md).
 *
 * The functions are imports from wasm module "fs". None returns a value:
 * results go to out-pointers. Reading a value (state, config, message key or
 * property) writes min(len, cap) bytes to buf and the full length to
 * *out_len, or -1 when the value is missing (a missing key is not an empty
 * value); when *out_len > cap, call again with a bigger buffer, or use the
 * fs_get_* helpers below, which do that.
 *
 * A bad pointer or a failed state operation traps: the message fails with
 * kind "trap" and the guest's state writes for it are discarded.
 */
#ifndef FS_H
#define FS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FS_IMPORT(name) __attribute__((import_module("fs"), import_name(name)))

/* State: this function's key-value store (committed before the input is acked). */
FS_IMPORT("state_get")
void fs_state_get(const void *key, size_t key_len, void *buf, size_t cap, int32_t *out_len);
FS_IMPORT("state_put")
void fs_state_put(const void *key, size_t key_len, const void *value, size_t value_len);
FS_IMPORT("state_delete")
void fs_state_delete(const void *key, size_t key_len);
/* Adds delta to a decimal-integer value (missing = 0); the new value goes to *out. */
FS_IMPORT("state_add")
void fs_state_add(const void *key, size_t key_len, int64_t delta, int64_t *out);

/* The function's --config map. */
FS_IMPORT("config_get")
void fs_config_get(const void *key, size_t key_len, void *buf, size_t cap, int32_t *out_len);

/* One line into the worker's log. */
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

/* --- helpers ------------------------------------------------------------- */

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

/* Read a state value into *buf (grown with realloc as needed; *cap is its size).
 * Returns the value's length, -1 when the key is missing, -2 when out of memory. */
static inline int32_t fs_get_state(const void *key, size_t key_len, char **buf, size_t *cap)
{
    int32_t len;
    fs_state_get(key, key_len, *buf, *cap, &len);
    while (len >= 0 && (size_t)len > *cap) { /* it may change in between: loop */
        char *p = realloc(*buf, (size_t)len);
        if (p == NULL)
            return -2;
        *buf = p;
        *cap = (size_t)len;
        fs_state_get(key, key_len, *buf, *cap, &len);
    }
    return len;
}

/* The same for a config value. */
static inline int32_t fs_get_config(const char *key, char **buf, size_t *cap)
{
    int32_t len;
    fs_config_get(key, strlen(key), *buf, *cap, &len);
    while (len >= 0 && (size_t)len > *cap) { /* it may change in between: loop */
        char *p = realloc(*buf, (size_t)len);
        if (p == NULL)
            return -2;
        *buf = p;
        *cap = (size_t)len;
        fs_config_get(key, strlen(key), *buf, *cap, &len);
    }
    return len;
}

#endif /* FS_H */
