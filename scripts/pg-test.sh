#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests.
#
#   scripts/pg-test.sh COMMAND [ARGS...]   run COMMAND with NEUTRINO_TEST_PG_URL set
#   scripts/pg-test.sh                      start, print the URL, wait for Ctrl-C
#
# initdb into a fresh temporary directory (owned by the `postgres` user when
# run as root: initdb refuses root), listen on 127.0.0.1 on a free port and on
# a unix socket in that directory, fsync off.  The server is stopped and the
# directory removed when the command ends, however it ends.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DB_USER=neutrino
DB_NAME=neutrino

log() { printf 'pg-test: %s\n' "$*" >&2; }

PGBIN=${NEUTRINO_PG_BIN:-}
if [ -z "$PGBIN" ]; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    log "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (run make install)"
    exit 1
fi

# Run a PostgreSQL program as the owner of the cluster.
if [ "$(id -u)" -eq 0 ]; then
    RUN_AS=${NEUTRINO_PG_OS_USER:-postgres}
    if ! id "$RUN_AS" >/dev/null 2>&1; then
        log "user $RUN_AS does not exist (install postgresql, or set NEUTRINO_PG_OS_USER)"
        exit 1
    fi
    as_owner() { runuser -u "$RUN_AS" -- "$@"; }
else
    RUN_AS=$(id -un)
    as_owner() { "$@"; }
fi

PY=$ROOT/.venv/bin/python
[ -x "$PY" ] || PY=python3
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/neutrino-pg.XXXXXX")
chmod 700 "$TMP"
[ "$RUN_AS" != "$(id -un)" ] && chown "$RUN_AS" "$TMP"
DATA=$TMP/data
STARTED=""

cleanup() {
    local rc=$?
    if [ -n "$STARTED" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s.%N)
as_owner "$PGBIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust -E UTF8 --locale=C \
    --no-sync >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; exit 1; }

cat >>"$DATA/postgresql.conf" <<CONF
# neutrino pg-test: throwaway, speed over durability
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TMP'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 400
shared_buffers = 128MB
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
CONF

# The free port can be taken between the probe and the start: retry.
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    if as_owner "$PGBIN/pg_ctl" -D "$DATA" -o "-p $PORT" -l "$TMP/server.log" -w -t 60 \
            start >/dev/null 2>&1; then
        STARTED=1
        break
    fi
    log "start on port $PORT failed (attempt $attempt)"
    tail -n 5 "$TMP/server.log" >&2 || true
done
[ -n "$STARTED" ] || { log "could not start PostgreSQL"; exit 1; }

as_owner "$PGBIN/createdb" -h "$TMP" -p "$PORT" -U "$DB_USER" "$DB_NAME"

export NEUTRINO_TEST_PG_URL="postgresql://$DB_USER@127.0.0.1:$PORT/$DB_NAME"
log "PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}') up in $(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s"
echo "NEUTRINO_TEST_PG_URL=$NEUTRINO_TEST_PG_URL"

if [ $# -eq 0 ]; then
    log "socket directory $TMP; Ctrl-C stops and removes it"
    while :; do sleep 3600 & wait $! || true; done
fi
rc=0
"$@" || rc=$?
exit $rc
