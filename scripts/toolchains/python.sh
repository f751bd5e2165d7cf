#!/bin/sh
# Install the Python -> WebAssembly component toolchain: componentize-py from PyPI.
# Idempotent. Used by examples/basic/python/build.sh (docs/abi.md, lane 3).
set -e
VERSION=0.25.1
PYTHON="${PYTHON:-python3}"
have="$("$PYTHON" -m pip show componentize-py 2>/dev/null | sed -n 's/^Version: //p')"
if [ "$have" = "$VERSION" ] && command -v componentize-py >/dev/null 2>&1; then
    echo "python toolchain: componentize-py $VERSION already installed"
    exit 0
fi
if ! "$PYTHON" -m pip install --quiet "componentize-py==$VERSION"; then
    echo "python toolchain: 'pip install componentize-py==$VERSION' failed (needs PyPI)" >&2
    exit 1
fi
if ! command -v componentize-py >/dev/null 2>&1; then
    echo "python toolchain: componentize-py installed but not on PATH ($("$PYTHON" -m site --user-base)/bin?)" >&2
    exit 1
fi
echo "python toolchain: installed componentize-py $VERSION"
