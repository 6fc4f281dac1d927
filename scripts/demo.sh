#!/usr/bin/env bash
# One command to a working Gatehouse: a throwaway PostgreSQL with the shop
# database (test card numbers included) and the gateway in front of it on
# examples/pci.yaml. Ctrl-C stops both; state lives in .demo/ (delete it to
# start over). Tokens and passwords are generated once into .demo/env.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="/usr/local/go/bin:$PATH"
bash scripts/install-deps.sh

demo="$root/.demo"
mkdir -p "$demo"
chmod 755 "$demo"
bindir=$( (command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ] && pg_config --bindir) || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo "$1"; }
rand() { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

if [ ! -f "$demo/env" ]; then
  cat > "$demo/env" <<ENV
export GATEHOUSE_DATA="$demo/gatehouse"
export GATEHOUSE_PG_LISTEN="\${GATEHOUSE_PG_LISTEN:-127.0.0.1:15432}"
export GATEHOUSE_API_LISTEN="\${GATEHOUSE_API_LISTEN:-127.0.0.1:18080}"
export DEMO_PG_PORT="$(free_port 54329)"
export SHOP_PG_ADDR="127.0.0.1:\$DEMO_PG_PORT"
export DEMO_PG_SUPERUSER_PASSWORD="$(rand)"
export SHOP_READER_PASSWORD="$(rand)"
export SHOP_WRITER_PASSWORD="$(rand)"
export AGENT_TOKEN="agent-$(rand)"
export APPROVER_TOKEN="approver-$(rand)"
export AUDITOR_TOKEN="auditor-$(rand)"
ENV
  chmod 600 "$demo/env"
fi
# shellcheck disable=SC1091
source "$demo/env"

# PostgreSQL refuses to run as root: use the postgres system user then.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdata="$demo/pgdata"
if [ ! -d "$pgdata" ]; then
  mkdir -p "$pgdata"
  pwfile=$(mktemp)
  echo "$DEMO_PG_SUPERUSER_PASSWORD" > "$pwfile"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$pgdata" "$pwfile"; fi
  touch "$demo/postgres.log"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$demo/postgres.log"; fi
  as_pg "$bindir/initdb" -D "$pgdata" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  fresh=1
fi
as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$demo/postgres.log" -w -o "-c listen_addresses=127.0.0.1 -c port=$DEMO_PG_PORT -c unix_socket_directories=$pgdata" start >/dev/null
stop_pg() { as_pg "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop_pg EXIT

su_psql() { PGPASSWORD="$DEMO_PG_SUPERUSER_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$DEMO_PG_PORT user=postgres dbname=$1" "${@:2}"; }
if [ "${fresh:-0}" = 1 ]; then
  su_psql postgres -c "CREATE ROLE shop_reader LOGIN PASSWORD '$SHOP_READER_PASSWORD'" \
                   -c "CREATE ROLE shop_writer LOGIN PASSWORD '$SHOP_WRITER_PASSWORD'" \
                   -c "CREATE DATABASE shop"
  su_psql shop -f examples/shop.sql >/dev/null
fi

mkdir -p bin
go build -o bin/gatehouse ./cmd/gatehouse

port=${GATEHOUSE_PG_LISTEN##*:}
cat <<MSG

Gatehouse demo: PostgreSQL (database shop) on $SHOP_PG_ADDR, Gatehouse on $GATEHOUSE_PG_LISTEN.
In another terminal:

  source $demo/env
  PGPASSWORD="\$AGENT_TOKEN" psql "host=127.0.0.1 port=$port dbname=shop user=reader sslmode=require" -c 'select current_user'
  PGPASSWORD="\$AGENT_TOKEN" psql "host=127.0.0.1 port=$port dbname=shop user=writer sslmode=require"

The agent never sees shop_reader's or shop_writer's password. Metrics: http://$GATEHOUSE_API_LISTEN/metrics
Ctrl-C stops Gatehouse and PostgreSQL.

MSG
set +e
./bin/gatehouse serve --config examples/pci.yaml
