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
var Backends = append(SharedBackends[:1:1], Backend{"sqlite+journal", JournaledSQLiteDB}, SharedBackends[1])

// SharedBackends are the implementations that several handles (gateway
// replicas) may open at once.
var SharedBackends = []Backend{
	{"sqlite", SQLiteDB},
	{"postgres", PostgresDB},
}

// SQLiteDB is a fresh SQLite file in t's temporary directory.
func SQLiteDB(t *testing.T) DB { return sqliteDB(filepath.Join(t.TempDir(), "gatehouse.db")) }

func sqliteDB(path string) DB {
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

// JournaledSQLiteDB is SQLite behind a store.Journal, as the gateway runs
// it. One handle at a time may be open (DB.Exclusive).
func JournaledSQLiteDB(t *testing.T) DB {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := sqliteDB(path)
	journal := path + ".audit-journal"
	db.Open = func() (store.Store, error) {
		st, err := store.OpenSQLite(path)
		if err != nil {
			return nil, err
		}
		j, err := store.OpenJournal(context.Background(), st, journal, store.JournalOptions{})
		if err != nil {
			st.Close()
			return nil, err
		}
		return j, nil
	}
	db.Exclusive = true
	return db
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
