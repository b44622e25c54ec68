#!/bin/sh
# Container entrypoint: `restock <command>` (default `daemon`), or `healthcheck` for the image's
# HEALTHCHECK. exec keeps restock as PID 1's direct replacement, so SIGTERM reaches it.
set -eu

if [ "${1:-}" = "healthcheck" ]; then
    port="${RESTOCK_HEALTH_ADDR##*:}"
    exec python -c "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:${port}/healthz', timeout=4); sys.exit(0)"
fi

if [ "${1:-daemon}" = "daemon" ] && [ ! -d "${RESTOCK_CONFIG_DIR}" ]; then
    echo "restock: no config folder at ${RESTOCK_CONFIG_DIR}; mount yours there (read-only)" >&2
    exit 2
fi

# Options without a command (`docker run restock --health-addr ...`) go to the daemon.
case "${1:-}" in
    ""|-*) set -- daemon "$@" ;;
esac
exec restock "$@"
