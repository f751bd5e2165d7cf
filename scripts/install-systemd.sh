#!/usr/bin/env bash
# Install Function Stream as a systemd service: the system user and group
# 'function-stream', the units fsd.service and fs-pulsar.service in
# /etc/systemd/system, a default /etc/function-stream/fsd.toml (never
# overwritten), provision-pulsar.sh and the docs; then daemon-reload.
#
#   sudo scripts/install-systemd.sh                    # embedded broker (default)
#   sudo scripts/install-systemd.sh --separate-broker  # Pulsar in fs-pulsar.service
#   scripts/install-systemd.sh --dry-run               # print what it would do
#   DESTDIR=/tmp/root scripts/install-systemd.sh       # files only, under /tmp/root
#
# With DESTDIR set, only files are written (under DESTDIR): no user, no
# provisioning, no systemctl. See docs/systemd.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: install-systemd.sh [--dry-run] [--prefix DIR] [--fsd PATH] [--separate-broker]
                          [--no-provision] [--enable]
  --dry-run          print every step instead of doing it
  --prefix DIR       where fsd was installed (default /usr/local): units run DIR/bin/fsd,
                     provision-pulsar.sh goes to DIR/lib/function-stream, docs to
                     DIR/share/doc/function-stream
  --fsd PATH         the fsd executable the units run (default PREFIX/bin/fsd)
  --separate-broker  run Pulsar in fs-pulsar.service; the default fsd.toml points fsd at it
  --no-provision     do not fetch the Pulsar jars now (fs-pulsar.service fetches them
                     at start; the embedded broker needs them: see docs/systemd.md)
  --enable           systemctl enable --now the service(s)
environment: DESTDIR (install files under it, for packaging and tests)
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USER_NAME=function-stream
DRY_RUN=0
PREFIX=/usr/local
FSD=""
SEPARATE=0
PROVISION=1
ENABLE=0
DESTDIR="${DESTDIR:-}"

while (($#)); do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
        --prefix=*) PREFIX="${1#*=}" ;;
        --fsd) FSD="${2:?--fsd needs a path}"; shift ;;
        --fsd=*) FSD="${1#*=}" ;;
        --separate-broker) SEPARATE=1 ;;
        --no-provision) PROVISION=0 ;;
        --enable) ENABLE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install-systemd: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

FSD="${FSD:-$PREFIX/bin/fsd}"
LIBDIR="$PREFIX/lib/function-stream"
DOCDIR="$PREFIX/share/doc/function-stream"
UNITDIR=/etc/systemd/system
CONFDIR=/etc/function-stream

# Print a step; run it unless --dry-run.
run() {
    printf "+"; printf " %q" "$@"; echo
    if ((!DRY_RUN)); then "$@"; fi
}

# A unit with the install paths filled in (the files in systemd/ say /usr/local).
render_unit() {
    sed -e "s#/usr/local/bin/fsd#$FSD#g" \
        -e "s#/usr/local/lib/function-stream#$LIBDIR#g" \
        -e "s#/usr/local/share/doc/function-stream#$DOCDIR#g" \
        "$HERE/systemd/$1"
}

render_config() {
    if ((SEPARATE)); then
        sed -e 's|^#pulsar_url = |pulsar_url = |' -e 's|^#pulsar_admin_url = |pulsar_admin_url = |' \
            "$HERE/systemd/fsd.toml"
    else
        cat "$HERE/systemd/fsd.toml"
    fi
}

# write FILE MODE GENERATOR...: the generator's output into DESTDIR/FILE.
write() {
    local file="$DESTDIR$1" mode="$2"
    shift 2
    echo "+ $* > $file (mode $mode)"
    if ((!DRY_RUN)); then
        mkdir -p "$(dirname "$file")"
        "$@" >"$file.tmp"
        chmod "$mode" "$file.tmp"
        mv "$file.tmp" "$file"
    fi
}

live=1  # acting on this machine (not a DESTDIR tree)
[[ -n "$DESTDIR" ]] && live=0

if ((live)) && ((!DRY_RUN)) && ((EUID != 0)); then
    echo "install-systemd: run as root (sudo), or use --dry-run or DESTDIR=..." >&2
    exit 1
fi
if [[ ! -x "$FSD" ]] && ((live)); then
    echo "install-systemd: warning: $FSD is not an executable yet; install the package" \
        "(sudo pip install .) or pass --fsd PATH" >&2
fi
case "$FSD" in
    /root/*|/home/*|/run/user/*)
        echo "install-systemd: warning: $FSD is under a home directory, which the unit hides" \
            "(ProtectHome=yes); install fsd system-wide" >&2 ;;
esac

# 1. The system user and group (the service's, and the control socket's group).
if ((live)); then
    if ! getent group "$USER_NAME" >/dev/null; then
        run groupadd --system "$USER_NAME"
    fi
    if ! getent passwd "$USER_NAME" >/dev/null; then
        run useradd --system --gid "$USER_NAME" --home-dir /var/lib/function-stream \
            --no-create-home --shell /usr/sbin/nologin \
            --comment "Function Stream daemon" "$USER_NAME"
    fi
else
    echo "# DESTDIR set: not creating the user and group '$USER_NAME'"
fi

# 2. Units, helper script, docs.
write "$UNITDIR/fsd.service" 0644 render_unit fsd.service
write "$UNITDIR/fs-pulsar.service" 0644 render_unit fs-pulsar.service
write "$LIBDIR/provision-pulsar.sh" 0755 cat "$HERE/scripts/provision-pulsar.sh"
write "$DOCDIR/systemd.md" 0644 cat "$HERE/docs/systemd.md"
if [[ -f "$HERE/docs/configuration.md" ]]; then
    write "$DOCDIR/configuration.md" 0644 cat "$HERE/docs/configuration.md"
fi

# 3. The configuration: readable by the service's group, never overwritten.
if [[ -e "$DESTDIR$CONFDIR/fsd.toml" ]]; then
    echo "# keeping the existing $DESTDIR$CONFDIR/fsd.toml"
else
    write "$CONFDIR/fsd.toml" 0640 render_config
    if ((live)); then
        run chown root:"$USER_NAME" "$CONFDIR/fsd.toml"
    fi
fi
if ((live)); then
    run chown root:"$USER_NAME" "$CONFDIR"
    run chmod 0750 "$CONFDIR"
fi

# 4. The Pulsar jars for the embedded broker (fs-pulsar.service fetches its own at start).
if ((live)) && ((PROVISION)) && ((!SEPARATE)); then
    run env XDG_CACHE_HOME=/var/cache "$LIBDIR/provision-pulsar.sh"
    run chown -R "$USER_NAME:$USER_NAME" /var/cache/function-stream
fi

# 5. Tell systemd.
if ((live)); then
    run systemctl daemon-reload
    if ((ENABLE)); then
        if ((SEPARATE)); then
            run systemctl enable --now fs-pulsar.service
        fi
        run systemctl enable --now fsd.service
    fi
else
    echo "# DESTDIR set: not running systemctl daemon-reload"
fi

units="fsd.service"
if ((SEPARATE)); then units="fs-pulsar.service fsd.service"; fi
cat <<EOF
# done. Next:
#   systemctl enable --now $units
#   usermod -aG $USER_NAME YOUR_USER     # lets YOUR_USER run fsctl (control socket 0660)
#   systemctl status fsd; journalctl -u fsd -f; fsctl ping
EOF
