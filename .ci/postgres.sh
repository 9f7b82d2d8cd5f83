#!/usr/bin/env bash
# Install (Debian's package) and start a PostgreSQL server on loopback for the registry tests.
# Prints the URL to use as DEPOT_TEST_DATABASE_URL on its last line.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=/var/tmp/modeldepot-pg
port=55432
if [ ! -f "$data/PG_VERSION" ]; then
  rm -rf "$data"; mkdir -p "$data"; chown postgres:postgres "$data"
  su postgres -c "$bin/initdb -D $data -A trust -U postgres" >&2
fi
if ! su postgres -c "$bin/pg_ctl -D $data status" >/dev/null 2>&1; then
  mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
  su postgres -c "$bin/pg_ctl -D $data -l $data/server.log -w -o '-p $port -k /var/run/postgresql -c listen_addresses=127.0.0.1' start" >&2
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
