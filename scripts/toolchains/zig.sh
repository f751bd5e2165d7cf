#!/usr/bin/env bash
# Install the Zig toolchain the Zig SDK and examples are built with: the PyPI
# package ziglang (a Zig release inside a wheel), pinned. Idempotent.
# Use it as: python3 -m ziglang build-exe ...  (examples/basic/zig/build.sh does).
set -euo pipefail

ZIG_VERSION=0.17.1
PY="${PYTHON:-python3}"

have=$("$PY" -m ziglang version 2>/dev/null || true)
if [[ "$have" == "$ZIG_VERSION" ]]; then
    echo "zig: ziglang $ZIG_VERSION already installed ($PY -m ziglang)"
    exit 0
fi
echo "zig: installing ziglang==$ZIG_VERSION with $PY -m pip (found: ${have:-none})"
if ! "$PY" -m pip install -q --disable-pip-version-check "ziglang==$ZIG_VERSION"; then
    echo "zig: pip install ziglang==$ZIG_VERSION failed; check that PyPI is reachable" >&2
    exit 1
fi
have=$("$PY" -m ziglang version)
if [[ "$have" != "$ZIG_VERSION" ]]; then
    echo "zig: installed ziglang reports version '$have', expected $ZIG_VERSION" >&2
    exit 1
fi
echo "zig: installed ziglang $have"
