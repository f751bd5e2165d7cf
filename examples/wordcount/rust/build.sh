#!/bin/sh
# Build wordcount.wasm from this directory's Rust source (see README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/../../../sdks/rust/build-module.sh" "$here" "$here/wordcount.wasm"
