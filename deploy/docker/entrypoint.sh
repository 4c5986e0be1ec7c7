#!/bin/sh
# Entry point of the watcher image (after tini):
#   (no arguments) or -options...   watcher run [options]
#   run|scan|replay|fix|templates|check-config|version ...   that watcher command
#   healthcheck                     exit 0 when /health/live answers (the image's HEALTHCHECK)
#   anything else                   executed as is: sh, git, railway ...
# Config, first that applies: $WATCHER_CONFIG_TOML (the whole TOML in one variable, for
# platforms without file mounts), $WATCHER_CONFIG, $WATCHER_CONFIG_DIR/watcher.toml
# (default /etc/watcher/watcher.toml, a mounted file), else defaults + WATCHER_* variables.
set -eu

CONFIG_DIR=${WATCHER_CONFIG_DIR:-/etc/watcher}

die() {
    echo "docker-entrypoint: $*" >&2
    exit 2 # watcher's own code for a usage or configuration error
}

use_config() {
    if [ -n "${WATCHER_CONFIG_TOML:-}" ]; then
        [ -z "${WATCHER_CONFIG:-}" ] || die "set WATCHER_CONFIG or WATCHER_CONFIG_TOML, not both"
        file=$(mktemp "${TMPDIR:-/tmp}/watcher-config.XXXXXX") ||
            die "cannot write the config from WATCHER_CONFIG_TOML: mount a writable /tmp"
        printf '%s' "$WATCHER_CONFIG_TOML" >"$file"
        # the TOML may carry secrets: the processes watcher starts need not see it
        unset WATCHER_CONFIG_TOML
        export WATCHER_CONFIG="$file"
    elif [ -z "${WATCHER_CONFIG:-}" ] && [ -f "$CONFIG_DIR/watcher.toml" ]; then
        export WATCHER_CONFIG="$CONFIG_DIR/watcher.toml"
    fi
}

check_state_dir() {
    # the usual first-run failure: a bind mount owned by the host's user, not by this one
    [ -n "${WATCHER_STATE_PATH:-}" ] || return 0
    dir=$(dirname "$WATCHER_STATE_PATH")
    mkdir -p "$dir" 2>/dev/null || true
    if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
        die "state directory $dir is not writable by uid $(id -u): use a named volume, or chown $(id -u) it on the host"
    fi
}

healthcheck() {
    listen=${WATCHER_HTTP_LISTEN:-127.0.0.1:9464}
    host=${listen%:*}
    port=${listen##*:}
    case $host in
        "" | 0.0.0.0) host=127.0.0.1 ;;
        "[::]") host="[::1]" ;;
    esac
    exec python -c '
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    sys.exit(f"unhealthy: {sys.argv[1]}: {exc}")
' "http://$host:$port/health/live"
}

case ${1:-} in
    "") set -- run ;;
    -*) set -- run "$@" ;;
esac

case $1 in
    healthcheck)
        healthcheck
        ;;
    run | scan | replay | fix | templates | check-config | version)
        use_config
        if [ "$1" = run ]; then
            check_state_dir
        fi
        # exec: watcher becomes tini's child and receives SIGTERM itself
        exec watcher "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
