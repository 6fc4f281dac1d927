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

demo="${DEMO_DIR:-$root/.demo}"
mkdir -p "$demo"
chmod 755 "$demo"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if [ ! -f "$demo/env" ]; then
  cat > "$demo/env" <<ENV
export GATEHOUSE_DATA="$demo/gatehouse"
export GATEHOUSE_PG_LISTEN="\${GATEHOUSE_PG_LISTEN:-127.0.0.1:15432}"
export GATEHOUSE_API_LISTEN="\${GATEHOUSE_API_LISTEN:-127.0.0.1:18080}"
export DEMO_PG_PORT="$(free_port 54329)"
export SHOP_PG_ADDR="127.0.0.1:\$DEMO_PG_PORT"
export DEMO_PG_SUPERUSER_PASSWORD="$(rand_token)"
export SHOP_READER_PASSWORD="$(rand_token)"
export SHOP_WRITER_PASSWORD="$(rand_token)"
export AGENT_TOKEN="agent-$(rand_token)"
export APPROVER_TOKEN="approver-$(rand_token)"
export AUDITOR_TOKEN="auditor-$(rand_token)"
ENV
  chmod 600 "$demo/env"
fi
# shellcheck disable=SC1091
source "$demo/env"

pg_cluster_up "$demo" "$DEMO_PG_PORT" "$DEMO_PG_SUPERUSER_PASSWORD"
trap 'pg_cluster_down "$demo"' EXIT
if [ "$PG_CLUSTER_FRESH" = 1 ]; then
  shop_db_setup "$DEMO_PG_PORT" "$DEMO_PG_SUPERUSER_PASSWORD" "$SHOP_READER_PASSWORD" "$SHOP_WRITER_PASSWORD"
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
