#!/bin/sh
# Build basic.wasm (a WebAssembly component) from app.js with componentize-js.
# Toolchain: scripts/toolchains/js.sh (node, npm, and sdks/js/node_modules).
set -e
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
sdk="$root/sdks/js"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "skip: js: node and npm not found; install them with: bash scripts/toolchains/js.sh" >&2
    exit 77
fi
if [ ! -x "$sdk/node_modules/.bin/componentize-js" ]; then
    # A project-local dependency (sdks/js/package-lock.json), not a toolchain install.
    (cd "$sdk" && npm install --no-save --no-audit --no-fund >/dev/null)
fi
# componentize-js resolves relative imports against the working directory.
cd "$root"
"$sdk/node_modules/.bin/componentize-js" --wit "$root/wit" --world-name processor \
    --disable http fetch-event -o "$here/basic.wasm" "$here/app.js"
echo "wrote $here/basic.wasm ($(wc -c < "$here/basic.wasm") bytes)"
