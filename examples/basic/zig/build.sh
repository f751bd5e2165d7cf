#!/bin/sh
# Build basic.wasm from basic.zig and the Zig SDK (sdks/zig). Needs Zig 0.17
# (scripts/toolchains/zig.sh installs it: pip install ziglang==0.17.1).
set -e
here=$(cd "$(dirname "$0")" && pwd)
sdk="$here/../../../sdks/zig/function_stream.zig"

# Prefer the pinned PyPI build; a zig on PATH works if it is 0.17.x.
PY="${PYTHON:-python3}"
if "$PY" -c 'import ziglang' 2>/dev/null; then
    set -- "$PY" -m ziglang
elif command -v zig >/dev/null 2>&1; then
    set -- zig
else
    echo "skip: zig: no Zig compiler (install: pip install ziglang==0.17.1, or bash scripts/toolchains/zig.sh)" >&2
    exit 77
fi

# wasm32-freestanding: no WASI imports at all; -fno-entry: a library with
# exports (the SDK's alloc/process/process_batch), no _start.
cd "$here"
"$@" build-exe -target wasm32-freestanding -O ReleaseSmall -fstrip -fno-entry \
    --export=alloc --export=process --export=process_batch \
    --dep function_stream -Mroot=basic.zig -Mfunction_stream="$sdk" \
    -femit-bin=basic.wasm
rm -f basic.wasm.o
echo "built $here/basic.wasm ($(wc -c <basic.wasm) bytes)"
