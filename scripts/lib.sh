# Shared shell helpers of the demo and benchmark scripts. Source it.

pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
  else
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
  fi
}

# as_pg runs a PostgreSQL server command; PostgreSQL refuses to run as root,
# so root runs it as the postgres system user.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo "$1"; }
rand_token() { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

# pg_cluster_up DIR PORT SUPERUSER_PASSWORD [extra postgres -c options]:
# creates (first time) and starts a SCRAM-only cluster on 127.0.0.1:PORT.
# Sets PG_CLUSTER_FRESH=1 when it was just created.
pg_cluster_up() {
  local dir port=$2 pw=$3; dir=$(mkdir -p "$1" && cd "$1" && pwd); shift 3
  local bindir; bindir=$(pg_bindir)
  PG_CLUSTER_FRESH=0
  if [ ! -d "$dir/pgdata" ]; then
    mkdir -p "$dir/pgdata"
    local pwfile; pwfile=$(mktemp)
    echo "$pw" > "$pwfile"
    touch "$dir/postgres.log"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir/pgdata" "$pwfile" "$dir/postgres.log"; fi
    as_pg "$bindir/initdb" -D "$dir/pgdata" -U postgres --pwfile="$pwfile" \
      --auth-host=scram-sha-256 --auth-local=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    PG_CLUSTER_FRESH=1
  fi
  as_pg "$bindir/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/pgdata $*" start >/dev/null
}

pg_cluster_down() {
  as_pg "$(pg_bindir)/pg_ctl" -D "$1/pgdata" -m fast -w stop >/dev/null 2>&1 || true
}

# shop_db_setup PORT SUPERUSER_PASSWORD READER_PW WRITER_PW: roles, database
# shop and examples/shop.sql.
shop_db_setup() {
  local port=$1 pw=$2
  local su="host=127.0.0.1 port=$port user=postgres"
  PGPASSWORD="$pw" psql -X -q -v ON_ERROR_STOP=1 "$su dbname=postgres" \
    -c "CREATE ROLE shop_reader LOGIN PASSWORD '$3'" \
    -c "CREATE ROLE shop_writer LOGIN PASSWORD '$4'" \
    -c "CREATE DATABASE shop"
  PGPASSWORD="$pw" psql -X -q -v ON_ERROR_STOP=1 "$su dbname=shop" -f examples/shop.sql >/dev/null
}
