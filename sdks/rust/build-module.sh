#!/bin/sh
# Build a Function Stream function written with this SDK into one .wasm module.
#
#   sdks/rust/build-module.sh CRATE_DIR OUTPUT.wasm
#
# CRATE_DIR holds a Cargo package with crate-type ["cdylib"]. The module is
# built offline in release mode for wasm32-wasip1 (rustc >= 1.78) or
# wasm32-wasi (older rustc, e.g. Debian's 1.63), whichever has its standard
# library installed, and copied to OUTPUT.wasm. Exits 77 with one "skip:" line
# on stderr when there is no Rust toolchain for wasm (see docs in README.md).
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 CRATE_DIR OUTPUT.wasm" >&2
    exit 2
fi
crate=$(cd "$1" && pwd)
output=$2
# The first toolchain with a wasm std: cargo and rustc on PATH (rustup's, or
# $RUSTC), else Debian's in /usr/bin (rustup's proxies may shadow them).
cargo= rustc= target=
for pair in "cargo ${RUSTC:-rustc}" "/usr/bin/cargo /usr/bin/rustc"; do
    set -- $pair
    command -v "$1" >/dev/null 2>&1 || continue
    sysroot=$("$2" --print sysroot 2>/dev/null) || continue
    for t in wasm32-wasip1 wasm32-wasi; do
        if [ -d "$sysroot/lib/rustlib/$t/lib" ]; then
            cargo=$1 rustc=$2 target=$t
            break 2
        fi
    done
done
if [ -z "$target" ]; then
    if command -v cargo >/dev/null 2>&1; then
        why="no standard library for wasm32-wasip1 or wasm32-wasi is installed"
    else
        why="cargo is not installed"
    fi
    echo "skip: rust: $why; install it with: bash scripts/toolchains/rust.sh" >&2
    exit 77
fi

# Panic messages carry source paths: make them relative to the repository, so a
# build gives the same bytes in every checkout.
repo=$(cd "$(dirname "$0")/../.." && pwd)
RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$repo=. --remap-path-prefix=$HOME=~" \
    RUSTC=$rustc "$cargo" build --quiet --offline --release --target "$target" --manifest-path "$crate/Cargo.toml"
# The cdylib is named after the package, with - as _.
name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$crate/Cargo.toml" | head -n 1 | tr - _)
cp "$crate/target/$target/release/$name.wasm" "$output"
echo "built $output ($(wc -c <"$output") bytes, $("$rustc" --version), $target)"
