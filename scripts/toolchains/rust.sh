#!/bin/sh
# Install a Rust toolchain that builds WebAssembly functions with sdks/rust
# (cargo + the standard library for wasm32-wasip1, or wasm32-wasi on rustc
# before 1.78). Idempotent: does nothing when one is there. In order:
#   1. cargo and rustc on PATH, or Debian's /usr/bin ones, with a wasm std: done;
#   2. rustup: `rustup target add wasm32-wasip1` (wasm32-wasi for old rustc);
#   3. apt (Debian bookworm): rustc cargo libstd-rust-dev-wasm32 (rustc 1.63,
#      wasm32-wasi), which sdks/rust/build-module.sh finds in /usr/bin.
# Exits non-zero with one line saying why when none of them works.
set -eu

# Prints "cargo rustc target" of the first toolchain with a wasm std.
find_toolchain() {
    for pair in "cargo ${RUSTC:-rustc}" "/usr/bin/cargo /usr/bin/rustc"; do
        set -- $pair
        command -v "$1" >/dev/null 2>&1 || continue
        sysroot=$("$2" --print sysroot 2>/dev/null) || continue
        for t in wasm32-wasip1 wasm32-wasi; do
            if [ -d "$sysroot/lib/rustlib/$t/lib" ]; then
                echo "$1 $2 $t"
                return 0
            fi
        done
    done
    return 1
}

report_ok() {
    set -- $(find_toolchain)
    echo "rust: ok: $("$2" --version) with the $3 standard library ($1)"
}

if find_toolchain >/dev/null; then
    report_ok
    exit 0
fi

if command -v rustup >/dev/null 2>&1; then
    echo "rust: rustup target add wasm32-wasip1"
    if rustup target add wasm32-wasip1 || rustup target add wasm32-wasi; then
        if find_toolchain >/dev/null; then
            report_ok
            exit 0
        fi
    fi
    echo "rust: rustup could not add a wasm target; trying apt" >&2
fi

if command -v apt-get >/dev/null 2>&1; then
    sudo=
    if [ "$(id -u)" -ne 0 ]; then
        sudo=sudo
    fi
    packages="rustc cargo libstd-rust-dev-wasm32"
    echo "rust: apt-get install -y $packages"
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y $packages; then
        $sudo apt-get update
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y $packages
    fi
    if find_toolchain >/dev/null; then
        report_ok
        exit 0
    fi
fi

echo "rust: cannot install a Rust toolchain for wasm32-wasip1/wasm32-wasi (needs rustup, or apt with Debian's rustc cargo libstd-rust-dev-wasm32)" >&2
exit 1
