// Package e2e holds Gatehouse's end-to-end tests: a real PostgreSQL cluster
// (internal/pgtest), the gateway built from examples/pci.yaml, and real
// clients — psql, pgbench and pgx — talking to it.
package e2e
