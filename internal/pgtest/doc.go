// Package pgtest starts throwaway PostgreSQL clusters for integration tests.
//
// A cluster is a real postgres server: initdb into a temporary directory,
// SCRAM-SHA-256 for every TCP connection, a superuser "postgres" with a random
// password, listening on 127.0.0.1 on a free port and on a Unix socket in the
// same temporary directory. Tests drive it with real clients; nothing is
// mocked.
//
// Start gives a test its own cluster, stopped and removed when the test ends.
// Shared gives every test of the test binary the same cluster, started on first
// use (about a second) and stopped when the test binary exits; tests on the
// shared cluster isolate themselves with their own databases and roles
// (CreateDatabase, CreateRole) rather than by owning the server.
//
// The server binaries are found through pg_config --bindir, then
// /usr/lib/postgresql/*/bin (newest first), then PATH. When they cannot be
// found the test fails, never skips: a green run must mean the integration
// tests ran. initdb refuses to run as root, so when the test runs as root the
// cluster directory belongs to the "postgres" system user and initdb, pg_ctl
// and postgres run as that user.
//
// fsync is off: a test cluster trades crash safety for speed, which is why
// nothing here is suitable outside tests.
package pgtest
