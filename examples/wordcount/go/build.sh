#!/bin/sh
# Build wordcount.wasm from this directory's Go source with the Go SDK (sdks/go).
set -e
here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/../../../sdks/go/build-module.sh" "$here" "$here/wordcount.wasm"
