#!/usr/bin/env bash
# Installs what Gatehouse's tests, demo and benchmarks need on a Debian
# machine: a PostgreSQL server and client (initdb, pg_ctl, psql, pgbench),
# PgBouncer for the benchmarks, and gcc for pg_query_go's cgo build.
# Idempotent: does nothing when everything is present.
set -euo pipefail

need=()
pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
bindir=$(pg_bindir || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
  need+=(postgresql postgresql-contrib)
fi
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v pgbench >/dev/null 2>&1 || need+=(postgresql-contrib)
if [ "${GATEHOUSE_SKIP_PGBOUNCER:-}" != 1 ] && ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  need+=(pgbouncer)
fi
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # policy-rc.d keeps the package from starting a system cluster we do not use.
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "install-deps: Go is not installed (need go >= 1.26 on PATH)" >&2
  exit 1
fi
# The tests run PostgreSQL as the 'postgres' system user when run as root
# (initdb refuses root); the server package creates that user.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
fi
