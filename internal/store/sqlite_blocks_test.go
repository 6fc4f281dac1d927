package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// blocksDiffer counts the rows of the block tables that do not match the
// events: a (session, principal or table; block) with events but no row,
// or a row with no event in its block.
func blocksDiffer(t *testing.T, s *SQLite) int {
	t.Helper()
	n := 0
	for _, o := range []struct{ table, col, source string }{
		{"audit_session_blocks", "session_id", "audit_events"},
		{"audit_principal_blocks", "principal", "audit_events"},
		{"audit_table_blocks", "name", "audit_event_tables"},
	} {
		events := fmt.Sprintf(`SELECT DISTINCT %s, idx >> %d FROM %s WHERE %s <> ''`, o.col, blockShift, o.source, o.col)
		rows := fmt.Sprintf(`SELECT %s, block FROM %s`, o.col, o.table)
		var missing, extra int
		if err := s.db.QueryRow(`SELECT count(*) FROM (` + events + ` EXCEPT ` + rows + `)`).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if err := s.db.QueryRow(`SELECT count(*) FROM (` + rows + ` EXCEPT ` + events + `)`).Scan(&extra); err != nil {
			t.Fatal(err)
		}
		if missing+extra > 0 {
			t.Logf("%s: %d rows missing, %d without events", o.table, missing, extra)
		}
		n += missing + extra
	}
	return n
}

// ownerRecord is event i of session s<i%7> and principal p<i%3>, every
// fifth without either.
func ownerRecord(i int64) Record {
	r := jrec(i)
	r.SessionID, r.Principal = fmt.Sprintf("s%d", i%7), fmt.Sprintf("p%d", i%3)
	if i%5 == 0 {
		r.SessionID, r.Principal = "", ""
	}
	return r
}

// ownerTables are the tables of an old log's event i: every seventh has
// orders as well as payments.
func ownerTables(i int64) []string {
	if i%7 == 0 {
		return []string{"orders", "payments"}
	}
	return []string{"payments"}
}

func appendOwnerRecords(s *SQLite, from, to int64) error {
	var recs []Record
	for i := from; i < to; i++ {
		recs = append(recs, ownerRecord(i))
	}
	return s.AppendEvents(context.Background(), recs, jhead(to))
}

// TestBlockRows checks that appends keep the block tables equal to what
// the events say, across blocks, after a transaction that wrote
// block rows and was rolled back (the memo must forget them), and after a
// prune.
func TestBlockRows(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for from := int64(0); from < 2048; from += 128 {
		if err := appendOwnerRecords(s, from, from+128); err != nil {
			t.Fatal(err)
		}
	}
	// The next batch starts block 2; it fails at its first table row, after
	// the event's block rows were written.
	if _, err := s.db.Exec(`CREATE TRIGGER fail BEFORE INSERT ON audit_event_tables BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	if err := appendOwnerRecords(s, 2048, 2100); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("append with the failing trigger: %v", err)
	}
	if _, err := s.db.Exec(`DROP TRIGGER fail`); err != nil {
		t.Fatal(err)
	}
	if err := appendOwnerRecords(s, 2048, 2500); err != nil {
		t.Fatal(err)
	}
	if n := blocksDiffer(t, s); n != 0 {
		t.Fatalf("%d block rows differ from the events", n)
	}
	var rows int
	if err := s.db.QueryRow(`SELECT (SELECT count(*) FROM audit_session_blocks) + (SELECT count(*) FROM audit_principal_blocks) +
		(SELECT count(*) FROM audit_table_blocks)`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := 3 * (7 + 3 + 1); rows != want {
		t.Errorf("%d block rows for 2,500 events, want %d: one per session, principal or table and block", rows, want)
	}

	ctx := context.Background()
	if err := s.PruneEvents(ctx, Prune{Head: jhead(1500), Checkpoint: []byte("c\n"), Time: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	// Block 0 is gone; block 1 keeps its rows for the events from 1,500.
	if n := blocksDiffer(t, s); n != 0 {
		t.Fatalf("after a prune at 1500: %d block rows differ from the events", n)
	}
	for _, q := range []string{
		`DELETE FROM audit_session_blocks WHERE block = 1`,
		`DELETE FROM audit_principal_blocks WHERE block = 2`,
		`UPDATE audit_session_blocks SET session_id = 'x' WHERE block = 2`,
		`UPDATE audit_principal_blocks SET block = 9`,
		`DELETE FROM audit_table_blocks WHERE block = 1`,
		`UPDATE audit_table_blocks SET name = 'orders'`,
		`DELETE FROM audit_event_tables WHERE idx = 1500`,
		`UPDATE audit_event_tables SET name = 'orders' WHERE idx = 2000`,
	} {
		if _, err := s.db.Exec(q); err == nil {
			t.Errorf("%s: succeeded", q)
		}
	}
	if n := blocksDiffer(t, s); n != 0 {
		t.Fatalf("after the refused edits: %d block rows differ from the events", n)
	}
}

// TestQueriesReadBlocks checks the plan of session, principal and table
// queries: the block table's primary key, then each block's index range,
// and no sort, so that a page of a long log costs the blocks it reads.
func TestQueriesReadBlocks(t *testing.T) {
	s := openPlanStore(t)
	for _, q := range []Query{
		{Table: "payments"},
		{Table: "payments", Kind: "statement", From: 5000, To: 9000, Limit: 10},
		{Table: "payments", Decision: "deny"},
		{SessionID: "s1"},
		{Principal: "p1"},
		{SessionID: "s1", Principal: "p1", From: 5000, To: 9000, Limit: 10},
		{SessionID: "s1", Principal: "p1", Table: "payments"},
		{SessionID: "s1", Kind: "session.start"},
		{Principal: "p1", Decision: "deny"},
		{Principal: "p1", Table: "payments"},
	} {
		query, args := buildEvents(q, sqliteEvents)
		steps := queryPlan(t, s, query, args...)
		plan := strings.Join(steps, "\n")
		if !strings.Contains(plan, "SEARCH b USING PRIMARY KEY") {
			t.Errorf("%+v: plan does not search the blocks by their key:\n%s", q, plan)
		}
		// Each block's range: of the events, by the primary key or by a
		// partial index's (kind, idx) or (decision, idx); or of a table's
		// rows, by theirs.
		inBlock := slices.ContainsFunc(steps, func(step string) bool {
			return (strings.HasPrefix(step, "SEARCH e ") || strings.HasPrefix(step, "SEARCH t ")) &&
				(strings.Contains(step, "rowid>? AND rowid<?") || strings.Contains(step, "idx>? AND idx<?"))
		})
		if !inBlock {
			t.Errorf("%+v: plan does not read events by block range:\n%s", q, plan)
		}
		if strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%+v: plan sorts:\n%s", q, plan)
		}
	}
}

// TestSQLiteMigrationBuildsBlocks opens a log written before migrations
// 0009 and 0010 and checks that its events get their block rows, keep
// their tables, and are found by session, principal and table as before.
func TestSQLiteMigrationBuildsBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	exec, upgrade := oldSQLite(t, path, 9)
	const n = 2100
	for i := int64(0); i < n; i++ {
		r := ownerRecord(i)
		exec(`INSERT INTO audit_events (idx, ts, kind, session_id, principal, connection, decision, outcome, data, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Index, r.Time.UnixNano(), r.Kind, r.SessionID, r.Principal, r.Connection, r.Decision, r.Outcome, r.Data, r.Hash[:])
		for _, name := range ownerTables(i) {
			exec(`INSERT INTO audit_event_tables (name, idx) VALUES (?, ?)`, name, i)
		}
	}
	exec(`UPDATE audit_head SET size = ?`, n)
	s := upgrade()
	if n := blocksDiffer(t, s); n != 0 {
		t.Fatalf("%d block rows differ from the events", n)
	}
	for _, q := range []Query{
		{SessionID: "s3", Principal: "p2", Limit: -1},
		{Table: "orders", Limit: -1},
		{Table: "payments", Principal: "p1", Limit: -1},
	} {
		recs, err := s.Events(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i := int64(0); i < n; i++ {
			r := ownerRecord(i)
			if (q.SessionID == "" || r.SessionID == q.SessionID) && (q.Principal == "" || r.Principal == q.Principal) &&
				(q.Table == "" || slices.Contains(ownerTables(i), q.Table)) {
				want = append(want, i)
			}
		}
		if len(recs) != len(want) || len(want) == 0 {
			t.Fatalf("Events(%+v) after the upgrade: %d events, want %d", q, len(recs), len(want))
		}
		for i, r := range recs {
			if r.Index != want[i] || r.Hash != tlog.RecordHash(r.Data) || !slices.Equal(r.Tables, ownerTables(r.Index)) {
				t.Fatalf("Events(%+v): event %d is %d with tables %q, want %d with %q", q, i, r.Index, r.Tables, want[i], ownerTables(want[i]))
			}
		}
	}
	// Appends go on, in the block the old log ends in.
	if err := appendOwnerRecords(s, n, n+100); err != nil {
		t.Fatal(err)
	}
	if n := blocksDiffer(t, s); n != 0 {
		t.Fatalf("after appending: %d block rows differ from the events", n)
	}
}
