#!/bin/sh
# Build basic.wasm (a WebAssembly component) from app.js with componentize-js,
# through sdks/js/build-component.sh (world batch-processor).
# Toolchain: scripts/toolchains/js.sh (node, npm, and sdks/js/node_modules).
set -e
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
sh "$root/sdks/js/build-component.sh" "$here/app.js" "$here/basic.wasm"
echo "wrote $here/basic.wasm ($(wc -c < "$here/basic.wasm") bytes)"
