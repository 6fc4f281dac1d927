#!/usr/bin/env bash
# The test suite: what CI runs and what the README tells developers to run.
# gofmt, go vet and staticcheck, then unit tests, fuzz seed corpora, and
# end-to-end tests against real PostgreSQL clusters through psql, pgbench
# and pgx.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

bash scripts/install-deps.sh

unformatted=$(gofmt -l cmd internal e2e 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# staticcheck: unused code and the mistakes vet does not look for. Pinned,
# and fetched through the Go module proxy on first use (a tool, not a
# dependency of the binary: go.mod does not change).
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# -p 2: the machine has two cores and the e2e tests start PostgreSQL.
go test -count=1 -p 2 -timeout 20m ./...
