#!/bin/sh
# Build basic.wasm from index.ts + person.ts and the AssemblyScript SDK
# (sdks/assemblyscript). Needs node >= 20 and npm; the compiler is the
# assemblyscript package pinned in package-lock.json, installed into the local
# node_modules with `npm ci` when missing (scripts/toolchains/assemblyscript.sh
# does the same).
set -e
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "skip: assemblyscript: node and npm are needed (install: apt-get install nodejs npm, then bash scripts/toolchains/assemblyscript.sh)" >&2
    exit 77
fi

cd "$here"
if [ ! -x node_modules/.bin/asc ] || [ ! -e node_modules/@function-stream/sdk ]; then
    npm ci --no-audit --no-fund >&2
fi

# --runtime incremental: the GC runs by itself (the SDK keeps its buffers
# outside it); --use abort=: no env.abort import, so a throw is a trap;
# -O3 --noAssert: a release build.
node_modules/.bin/asc index.ts -o basic.wasm -O3 --noAssert \
    --runtime incremental --use abort=
echo "built $here/basic.wasm ($(wc -c <basic.wasm) bytes)"
