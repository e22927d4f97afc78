#!/usr/bin/env bash
# Start a private PostgreSQL on 127.0.0.1 for the store tests (Debian's package; installed if missing).
# Prints the SQLAlchemy URL of a database the tests may create databases in.
set -euo pipefail
port="${RAE_PG_PORT:-55432}"
url="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p "$port"; then
  echo "$url"  # already running (a developer's earlier start)
  exit 0
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
  echo "installing PostgreSQL (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
data=$(mktemp -d /tmp/rae-postgres.XXXXXX)
chown postgres "$data"
runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >&2
echo "$url"
