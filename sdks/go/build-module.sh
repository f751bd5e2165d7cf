#!/bin/sh
# build-module.sh PACKAGE_DIR OUT.wasm: build a Go function (a main package using
# sdks/go) into a reactor module, offline. Exits 77 with one `skip:` line when
# there is no Go >= 1.24 (bash scripts/toolchains/go.sh installs one).
set -e
sdk=$(cd "$(dirname "$0")" && pwd)
pkg=$(cd "$1" && pwd)
out=$2
. "$sdk/find-go.sh"
if ! go=$(fs_find_go); then
    echo "skip: go: no Go >= 1.24 found (install one with: bash scripts/toolchains/go.sh)" >&2
    exit 77
fi
cd "$pkg"
fs_go_build "$go" "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes) with $("$go" env GOVERSION)"
