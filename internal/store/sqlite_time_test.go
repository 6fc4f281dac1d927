package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSQLiteMigrationTimeOrder opens a store whose events, written before
// migration 0007, are out of time order in places (a gateway and a command
// appended to the same file). The migration must find where order begins,
// time ranges must stay exact though the index on time is gone, and
// appends must keep order from the last event on.
func TestSQLiteMigrationTimeOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	exec, upgrade := oldSQLite(t, path, 7)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	secs := []int{0, 2, 1, 3, 4, 6, 5, 7, 9, 8, 10, 11, 12, 13}
	at := func(i int) time.Time { return t0.Add(time.Duration(secs[i]) * time.Second) }
	for i := range secs {
		exec(`INSERT INTO audit_events (idx, ts, kind, session_id, principal, connection, decision, outcome, data, hash)
			VALUES (?, ?, 'statement', 's', 'ci-agent', 'shop', 'allow', '', ?, ?)`,
			i, at(i).UnixNano(), fmt.Sprintf(`{"n":%d}`, i), make([]byte, 32))
	}
	exec(`UPDATE audit_head SET size = ? WHERE id = 1`, len(secs))
	s := upgrade()
	var from int64
	if err := s.db.QueryRowContext(ctx, `SELECT ordered_from FROM audit_head WHERE id = 1`).Scan(&from); err != nil {
		t.Fatal(err)
	}
	if from != 9 {
		t.Fatalf("ordered_from = %d, want 9 (8 s after 9 s)", from)
	}
	checkTimeRanges(t, s, t0, secs, 0, [][2]int{{0, 2}, {2, 3}, {5, 6}, {8, 9}, {6, 100}, {9, 11}})

	early := Record{Index: int64(len(secs)), Time: at(len(secs) - 1).Add(-time.Second), Kind: "statement", Data: []byte(`{}`)}
	err := s.AppendEvents(ctx, []Record{early}, Head{Size: int64(len(secs)) + 1})
	var ce *ConflictError
	if !errors.As(err, &ce) || !ce.Last.Equal(at(len(secs)-1)) {
		t.Fatalf("append earlier than the last event: err = %v, want a ConflictError naming %s", err, at(len(secs)-1))
	}
}

// A database migrated by another build, whose migration of the same number
// had another name, is refused: skipping the file would leave the schema
// short of what the code relies on.
func TestMigrationFromAnotherBuildRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	exec, _ := oldSQLite(t, path, 7)
	exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (7, '0007_something_else.sql', 0)`)
	s, err := OpenSQLite(path)
	if err == nil {
		s.Close()
		t.Fatal("a database migrated by another build opened")
	}
	for _, want := range []string{"version 7", "0007_something_else.sql", "0007_audit_time_by_index.sql", "another build"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
