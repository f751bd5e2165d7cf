#!/bin/sh
# Build wordcount.wasm (the word-count example in Go; not committed) with the Go SDK in sdks/go.
# Needs Go >= 1.24 (bash scripts/toolchains/go.sh installs one); works offline.
set -e
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../sdks/go/find-go.sh"
if ! go=$(fs_find_go); then
    echo "skip: go: no Go >= 1.24 found (install one with: bash scripts/toolchains/go.sh)" >&2
    exit 77
fi
cd "$here"
fs_go_build "$go" wordcount.wasm.tmp
mv wordcount.wasm.tmp wordcount.wasm
echo "built $here/wordcount.wasm ($(wc -c <wordcount.wasm) bytes) with $("$go" env GOVERSION)"
