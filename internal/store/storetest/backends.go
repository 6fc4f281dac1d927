package storetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Backend names a store implementation and makes fresh databases for it.
type Backend struct {
	Name  string
	NewDB func(t *testing.T) DB
}

// Backends are every implementation, for tests that must hold on each.
var Backends = []Backend{
	{"sqlite", SQLiteDB},
	{"postgres", PostgresDB},
}

// SQLiteDB is a fresh SQLite file in t's temporary directory.
func SQLiteDB(t *testing.T) DB {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	return DB{
		Open: func() (store.Store, error) { return store.OpenSQLite(path) },
		Exec: func(q string) error {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = db.Exec(q)
			return err
		},
	}
}

// PostgresDB is a fresh database on the test binary's shared PostgreSQL
// cluster (see pgtest.Shared).
func PostgresDB(t *testing.T) DB {
	c := pgtest.Shared(t)
	dsn := c.DSN(c.NewDatabase(t))
	return DB{
		Open: func() (store.Store, error) { return store.OpenPostgres(context.Background(), dsn) },
		Exec: func(q string) error {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, q)
			return err
		},
	}
}
