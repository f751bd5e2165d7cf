#!/bin/sh
# Build the C "basic" example: basic.wasm (the ABI, on sdks/c/function_stream.h)
# and basic_stdio.wasm (a WASI command reading stdin, writing stdout).
# Needs clang with the wasm32 target, wasm-ld and a WASI sysroot (Debian:
#   apt-get install clang lld wasi-libc libclang-rt-dev-wasm32). CC and
# SYSROOT (e.g. a wasi-sdk sysroot) may be overridden from the environment.
set -e
cd "$(dirname "$0")"
CC=${CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1 &&
    ! command -v wasm-ld-14 >/dev/null 2>&1; then
    echo "skip: c: clang/wasm-ld not found; install with scripts/toolchains/c.sh" >&2
    exit 77
fi
FLAGS="--target=wasm32-wasi ${SYSROOT:+--sysroot=$SYSROOT} -O2 -std=c11 -Wall -Wextra -Werror -Wl,--strip-all"
$CC $FLAGS -I../../../sdks/c -mexec-model=reactor -o basic.wasm basic.c person.c
$CC $FLAGS -o basic_stdio.wasm basic_stdio.c person.c
