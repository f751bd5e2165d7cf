#!/bin/sh
# Install the JavaScript -> WebAssembly component toolchain: Node.js and npm (Debian),
# then componentize-js and its pinned dependencies from sdks/js/package-lock.json into
# sdks/js/node_modules. Idempotent. Used by examples/basic/js/build.sh.
# Why `npm install --no-save` and not `npm ci`: the registry this project reaches
# does not serve other platforms' optional binaries (rolldown, jco), so the lock
# file lists them without a version and `npm ci` refuses it as "out of sync";
# `npm install` still installs exactly the locked versions and leaves the lock alone.
set -e
root="$(cd "$(dirname "$0")/../.." && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "js toolchain: node and npm are missing; install them (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    echo "js toolchain: installed nodejs and npm (apt)"
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
    echo "js toolchain: componentize-js needs Node.js >= 18, found $(node --version)" >&2
    exit 1
fi
cd "$root/sdks/js"
if [ -x node_modules/.bin/componentize-js ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    echo "js toolchain: sdks/js/node_modules is up to date ($(node --version))"
    exit 0
fi
if ! npm install --no-save --no-audit --no-fund >/dev/null; then
    echo "js toolchain: 'npm install --no-save' in sdks/js failed (needs the npm registry)" >&2
    exit 1
fi
echo "js toolchain: npm install in sdks/js ($(node --version), componentize-js $(node -p 'require("./node_modules/@bytecodealliance/componentize-js/package.json").version'))"
