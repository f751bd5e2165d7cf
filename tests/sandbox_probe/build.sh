#!/bin/sh
# Rebuild the committed sandbox probe modules (clang with the wasm32-wasi target
# and a WASI sysroot: Debian clang lld wasi-libc libclang-rt-dev-wasm32).
set -e
cd "$(dirname "$0")"
CFLAGS="--target=wasm32-wasi -O2 -std=c11 -Wall -Wextra -Wl,--strip-all"
clang $CFLAGS -mexec-model=reactor -o probe.wasm probe.c
clang $CFLAGS -DPROBE_STDIO -o probe_stdio.wasm probe.c
