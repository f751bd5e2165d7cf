#!/usr/bin/env bash
# One-time (idempotent) setup on a fresh Debian/Ubuntu machine: system packages,
# the Python package with its dev tools, and the Apache Pulsar broker in the cache.
# Re-running it is fast: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v setpriv >/dev/null || need_apt+=(util-linux)
# A real PostgreSQL server for the state-store tests (tests/postgres.py runs initdb + pg_ctl).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
if (( ${#need_apt[@]} )); then
    echo "setup: installing ${need_apt[*]} with apt-get" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: Python >= 3.11 is required ($PY is $("$PY" --version 2>&1))" >&2
    exit 1
fi
# Installed, with its dev tools, and installed from *this* checkout (editable)?
# And with the dependencies setup.cfg lists now (a stamp of its hash, per checkout)?
installed_from=$(cd / && "$PY" -c 'import fsd, pytest, ruff, os; print(os.path.dirname(os.path.dirname(fsd.__file__)))' 2>/dev/null || true)
stamp="${XDG_CACHE_HOME:-$HOME/.cache}/function-stream/setup-$(echo "$PWD" | sha256sum | cut -c1-16).stamp"
deps=$(sha256sum setup.cfg | cut -d' ' -f1)
if [[ "$installed_from" != "$PWD" || "$(cat "$stamp" 2>/dev/null)" != "$deps" ]]; then
    echo "setup: installing function-stream (editable) with its dev tools" >&2
    "$PY" -m pip install -q --disable-pip-version-check -e '.[dev]' >&2
    mkdir -p "$(dirname "$stamp")" && echo "$deps" >"$stamp"
fi

scripts/provision-pulsar.sh >/dev/null
if [[ "${FS_SETUP_TOOLCHAINS:-0}" == "1" ]]; then
    # The compilers that build the examples from source (the conformance suite
    # and `make examples`); the examples' basic modules are committed, so
    # `make run` does not need them.
    scripts/toolchains.sh
fi
echo "setup: done" >&2
