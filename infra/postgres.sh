#!/usr/bin/env bash
# PostgreSQL for the `services` profile: the metadata database of MLflow and Airflow.
#   bash infra/postgres.sh up|down|status
# Debian's postgresql package (installed with apt-get when missing and we are root),
# a private cluster under $SOCIALSUGGEST_HOME/services (never the system cluster),
# run as the `postgres` user (initdb refuses root), listening on 127.0.0.1 only.
# Creates role `socialsuggest` (password from SOCIALSUGGEST_PG_PASSWORD) and the
# databases `mlflow` and `airflow`.
SERVICE=postgres
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"

PORT="${SOCIALSUGGEST_PG_PORT:-5432}"
PASSWORD="${SOCIALSUGGEST_PG_PASSWORD:-socialsuggest-local}"
DIR="$STATE/postgres-$PORT"
DATA="$DIR/data"
RUN_AS=postgres

find_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$bin" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's postgresql package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || die "apt-get install postgresql failed"
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  [ -n "$bin" ] || die "PostgreSQL server not found: install it (Debian: apt-get install postgresql)"
  echo "$bin"
}

as_pg() {  # run a command as the postgres user when we are root
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi
}

running() { [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

up() {
  BIN="$(find_bin)"
  if running; then say "already running on 127.0.0.1:$PORT"; echo "postgresql://socialsuggest@127.0.0.1:$PORT"; return 0; fi
  mkdir -p "$DIR"
  if [ "$(id -u)" -eq 0 ]; then chown "$RUN_AS" "$DIR"; fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "initialising a private cluster in $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >/dev/null || die "initdb failed (the postgres user must be able to reach $DIR)"
  fi
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null \
    || { tail -20 "$DIR/postgres.log" >&2; die "did not start (log: $DIR/postgres.log)"; }
  as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'socialsuggest') THEN
    CREATE ROLE socialsuggest LOGIN;
  END IF;
END \$\$;
ALTER ROLE socialsuggest PASSWORD '$PASSWORD';
SQL
  for db in mlflow airflow; do
    as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || as_pg "$BIN/createdb" -h "$DIR" -p "$PORT" -U postgres -O socialsuggest "$db"
  done
  say "ready on 127.0.0.1:$PORT (databases mlflow, airflow; role socialsuggest)"
  echo "postgresql://socialsuggest@127.0.0.1:$PORT"
}

down() {
  BIN="$(find_bin)"
  if ! running; then say "not running"; return 0; fi
  as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null && say "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) BIN="$(find_bin)"; if running; then say "running on 127.0.0.1:$PORT"; else say "stopped"; exit 3; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
