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
install_hint="install it with: bash scripts/toolchains/rust.sh"

if ! command -v cargo >/dev/null 2>&1; then
    echo "skip: rust: cargo is not installed; $install_hint" >&2
    exit 77
fi
rustc=${RUSTC:-rustc}
if ! sysroot=$("$rustc" --print sysroot 2>/dev/null); then
    echo "skip: rust: $rustc does not run; $install_hint" >&2
    exit 77
fi
target=
for t in wasm32-wasip1 wasm32-wasi; do
    if [ -d "$sysroot/lib/rustlib/$t/lib" ]; then
        target=$t
        break
    fi
done
if [ -z "$target" ]; then
    echo "skip: rust: no wasm32-wasip1/wasm32-wasi standard library in $sysroot; $install_hint" >&2
    exit 77
fi

cargo build --quiet --offline --release --target "$target" --manifest-path "$crate/Cargo.toml"
# The cdylib is named after the package, with - as _.
name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$crate/Cargo.toml" | head -n 1 | tr - _)
cp "$crate/target/$target/release/$name.wasm" "$output"
echo "built $output ($(wc -c <"$output") bytes, $("$rustc" --version), $target)"
