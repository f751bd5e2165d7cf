#!/bin/sh
# Build basic.wasm (a WebAssembly component) from app.py with componentize-py.
# Toolchain: scripts/toolchains/python.sh (pip install componentize-py==0.25.1).
set -e
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if ! command -v componentize-py >/dev/null 2>&1; then
    echo "skip: python: componentize-py not found; install it with: bash scripts/toolchains/python.sh" >&2
    exit 77
fi
cd "$here"
componentize-py -d "$root/wit" -w batch-processor componentize app \
    -p "$here" -p "$root/sdks/python" -o "$here/basic.wasm"
echo "wrote $here/basic.wasm ($(wc -c < "$here/basic.wasm") bytes)"
