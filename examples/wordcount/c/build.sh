#!/bin/sh
# Build the C "wordcount" example (wordcount.wasm) on sdks/c/function_stream.h.
# Toolchain: see examples/basic/c/build.sh.
set -e
cd "$(dirname "$0")"
CC=${CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "skip: c: clang not found; install with scripts/toolchains/c.sh" >&2
    exit 77
fi
$CC --target=wasm32-wasi ${SYSROOT:+--sysroot=$SYSROOT} -O2 -std=c11 -Wall -Wextra -Werror \
    -Wl,--strip-all -I../../../sdks/c -mexec-model=reactor -o wordcount.wasm wordcount.c
