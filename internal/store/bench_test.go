package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// BenchmarkAppendEvents is one durable append transaction per op: batch 2 is
// one client's statement plus the previous outcome, batch 16 what group
// commit gathers under load.
func BenchmarkAppendEvents(b *testing.B) {
	open := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			s, err := store.OpenSQLite(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B) store.Store {
			c := pgtest.Shared(b)
			s, err := store.OpenPostgres(context.Background(), c.DSN(c.NewDatabase(b)))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, batch := range []int{2, 16, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", name, batch), func(b *testing.B) {
				s := open[name](b)
				defer s.Close()
				storetest.BenchAppend(b, s, batch)
			})
		}
	}
}

// BenchmarkAppendEventsIndexCost is what each secondary index of the audit
// log costs an append on SQLite: batches of 256 events (an index round under
// load) into the full schema, then with one or more indexes dropped. The
// difference in cpu-µs/op is that index's share. For deciding which index
// to change, not a figure any release depends on.
func BenchmarkAppendEventsIndexCost(b *testing.B) {
	for _, drop := range []string{
		"",
		"audit_events_rare_kind,audit_events_rare_decision,audit_events_rare_outcome",
	} {
		name := "full"
		if drop != "" {
			name = "without=" + strings.ReplaceAll(drop, ",", "+")
		}
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.db")
			s, err := store.OpenSQLite(path)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if drop != "" {
				db, err := sql.Open("sqlite", path)
				if err != nil {
					b.Fatal(err)
				}
				for _, index := range strings.Split(drop, ",") {
					if _, err := db.Exec("DROP INDEX " + index); err != nil {
						b.Fatal(err)
					}
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
			storetest.BenchAppend(b, s, 256)
		})
	}
}

// BenchmarkAppendChunk is one recording chunk stored per op, of the sizes a
// 512 KiB chunk of result rows compresses to (about 64 KiB for repetitive
// rows, a few hundred for varied ones).
func BenchmarkAppendChunk(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("sqlite/%dKiB", size>>10), func(b *testing.B) {
			s, err := store.OpenSQLite(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			storetest.BenchAppendChunk(b, s, size)
		})
	}
}
