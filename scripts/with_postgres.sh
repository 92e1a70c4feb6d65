#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster: initdb into a temp dir, listen on
# 127.0.0.1 at a free port, export DATABASE_URL, run the command, stop and delete the cluster
# at the end (also on failure or Ctrl-C). PostgreSQL refuses to run as root: as root, the
# cluster runs as the unprivileged user `postgres` (created if missing).
set -euo pipefail

for tool in initdb pg_ctl postgres; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "with_postgres.sh: '$tool' not found on PATH; install PostgreSQL 15 server binaries (Debian: apt-get install postgresql-15)." >&2
    exit 2
  }
done

PGTMP=$(mktemp -d /tmp/patientdesk-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
RUNAS=()
if [ "$(id -u)" = "0" ]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  fi
  chown postgres "$PGTMP"
  RUNAS=(runuser -u postgres --)
fi

cleanup() {
  "${RUNAS[@]}" pg_ctl -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGTMP"
}
trap cleanup EXIT INT TERM

"${RUNAS[@]}" initdb -D "$PGTMP/data" -U patientdesk --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$PGTMP/initdb.log" 2>&1 \
  || { cat "$PGTMP/initdb.log" >&2; exit 1; }
"${RUNAS[@]}" pg_ctl -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 start \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGTMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
  || { cat "$PGTMP/server.log" >&2; exit 1; }

export DATABASE_URL="postgres://patientdesk@127.0.0.1:$PORT/postgres"
echo "with_postgres.sh: throwaway PostgreSQL $(postgres --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
"$@"
