#!/bin/sh
# Install the C toolchain for wasm32-wasi from Debian: clang, wasm-ld, wasi-libc
# and the wasm32 compiler runtime. Idempotent: does nothing when clang already
# links a WASI reactor.
set -e
probe() {
    dir=$(mktemp -d)
    printf 'int f(void){return 1;}\n' >"$dir/p.c"
    clang --target=wasm32-wasi -O2 -mexec-model=reactor -o "$dir/p.wasm" "$dir/p.c" >/dev/null 2>&1
    rc=$?
    rm -rf "$dir"
    return $rc
}
if command -v clang >/dev/null 2>&1 && probe; then
    echo "c: clang builds wasm32-wasi already"
    exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld wasi-libc libclang-rt-dev-wasm32
probe || { echo "c: clang still cannot link a wasm32-wasi reactor" >&2; exit 1; }
echo "c: installed clang lld wasi-libc libclang-rt-dev-wasm32"
