#!/usr/bin/env bash
# Install the AssemblyScript toolchain: node and npm (Debian's packages when
# missing), then the compiler pinned in the example's package-lock.json, with
# `npm ci` into examples/basic/assemblyscript/node_modules. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "assemblyscript: node/npm missing; installing nodejs npm with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major < 20 )); then
    # assemblyscript 0.28 declares engines node >= 20 (bookworm's nodejs is 18).
    echo "assemblyscript: warning: node $(node --version) is older than the 20 assemblyscript asks for" >&2
fi

example=examples/basic/assemblyscript
if [[ -x $example/node_modules/.bin/asc && -e $example/node_modules/@function-stream/sdk ]] &&
    (cd $example && npm ls --silent >/dev/null 2>&1); then
    echo "assemblyscript: $example/node_modules already matches package-lock.json"
else
    echo "assemblyscript: npm ci in $example"
    if ! (cd $example && npm ci --no-audit --no-fund); then
        echo "assemblyscript: npm ci failed in $example; check that the npm registry is reachable" >&2
        exit 1
    fi
fi
echo "assemblyscript: asc $($example/node_modules/.bin/asc --version | sed 's/^Version //'), node $(node --version), npm $(npm --version)"
