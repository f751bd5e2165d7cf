#!/usr/bin/env bash
# Build every example in every language this machine has a toolchain for
# (examples/<example>/<lang>/build.sh), then say what was built and what was
# skipped and why. Exit 1 if a build failed (a skip is not a failure).
# FS_EXAMPLES_DIR: another examples tree (for tests).
set -uo pipefail
cd "$(dirname "$0")/.."
examples=${FS_EXAMPLES_DIR:-examples}
built=() skipped=() failed=()
for script in "$examples"/*/*/build.sh; do
    dir=$(dirname "$script")
    what="${dir#"$examples"/}"
    if out=$(bash "$script" 2>&1); then
        built+=("$what")
    elif [[ $? -eq 77 ]]; then
        skipped+=("$what: $(echo "$out" | grep '^skip:' | tail -n 1)")
    else
        failed+=("$what")
        echo "$out" | tail -n 20 >&2
    fi
done
echo "built:   ${built[*]:-none}"
for s in "${skipped[@]}"; do echo "skipped: $s"; done
for f in "${failed[@]}"; do echo "FAILED:  $f"; done
(( ${#failed[@]} == 0 ))
