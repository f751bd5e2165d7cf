#!/bin/sh
# Build the probe components into <out dir>: probe-py-batch.wasm (world
# batch-processor), probe-py-single.wasm (world processor: `process` only) and
# probe-js-batch.wasm. Exit 77 when a toolchain is missing.
set -e
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$(cd "$1" && pwd)"
command -v componentize-py >/dev/null 2>&1 || { echo "skip: componentize-py not found" >&2; exit 77; }
cd "$here"
componentize-py -d "$root/wit" -w batch-processor componentize app \
    -p "$here" -p "$root/sdks/python" -o "$out/probe-py-batch.wasm" >/dev/null
componentize-py -d "$root/wit" -w processor componentize app \
    -p "$here" -p "$root/sdks/python" -o "$out/probe-py-single.wasm" >/dev/null
sh "$root/sdks/js/build-component.sh" "$here/app.js" "$out/probe-js-batch.wasm"
