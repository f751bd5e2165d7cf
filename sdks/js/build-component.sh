#!/bin/sh
# Build a JavaScript function into a WebAssembly component (lane 3, docs/abi.md):
#   sdks/js/build-component.sh <app.js> <out.wasm>
# <app.js> exports `process = component(fn)` (sdks/js/function_stream.js). The
# component is built for world "batch-processor": an entry module generated
# here re-exports the app and adds the SDK's `processBatch`, so the app needs
# nothing for the batch entry point. Toolchain: scripts/toolchains/js.sh.
set -e
if [ $# -ne 2 ]; then
    echo "usage: $0 <app.js> <out.wasm>" >&2
    exit 2
fi
sdk="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$sdk/../.." && pwd)"
app="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
out="$2"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "skip: js: node and npm not found; install them with: bash scripts/toolchains/js.sh" >&2
    exit 77
fi
if [ ! -x "$sdk/node_modules/.bin/componentize-js" ]; then
    # A project-local dependency (sdks/js/package-lock.json), not a toolchain install.
    (cd "$sdk" && npm install --no-save --no-audit --no-fund >/dev/null)
fi
# componentize-js reads modules below its working directory only: run it from
# the deepest directory that holds both the app and the SDK. The entry module
# sits beside the app and imports both by relative path.
dir="$(dirname "$app")"
top="$root"
while [ "$top" != "/" ] && [ "${dir#"$top"/}" = "$dir" ] && [ "$dir" != "$top" ]; do
    top="$(dirname "$top")"
done
entry="$dir/.fs-entry-$$.js"
trap 'rm -f "$entry"' EXIT
sdk_rel="$(realpath --relative-to="$dir" "$sdk/function_stream.js")"
cat > "$entry" <<JS
export * from "./$(basename "$app")";
export { processBatch } from "./$sdk_rel";
JS
case "$out" in /*) ;; *) out="$(pwd)/$out" ;; esac
cd "$top"
"$sdk/node_modules/.bin/componentize-js" --wit "$root/wit" --world-name batch-processor \
    --disable http fetch-event -o "$out" "$entry"
