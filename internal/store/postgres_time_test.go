package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// TestPostgresMigrationTimeOrder opens a store whose events, written before
// migration 0006 by replicas with clocks apart, are out of time order in
// places. The migration must find where order begins; time ranges must be
// exact while events from before it remain and once retention has removed
// those; appends must keep order from the last event on; and a replica
// still running the previous release, appending out of order, must move
// where order begins rather than make queries miss its events.
func TestPostgresMigrationTimeOrder(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Shared(t)
	dsn := c.DSN(c.NewDatabase(t))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	ms, err := migrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`)
	for _, m := range ms {
		if m.version >= 6 {
			break
		}
		exec(m.sql)
		exec(`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
	}
	// Seconds from t0: two replicas a few seconds apart interleave until
	// event 9, the last one earlier than an event before it.
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	secs := []int{0, 5, 1, 6, 2, 7, 3, 8, 9, 4, 10, 11, 12, 13}
	at := func(i int) time.Time { return t0.Add(time.Duration(secs[i]) * time.Second) }
	for i := range secs {
		exec(`INSERT INTO audit_events (idx, ts, kind, session_id, principal, connection, decision, outcome, data, hash)
			VALUES ($1, $2, 'statement', 's', 'ci-agent', 'shop', 'allow', '', $3, $4)`,
			i, at(i).UnixNano(), fmt.Sprintf(`{"n":%d}`, i), make([]byte, 32))
	}
	exec(`UPDATE audit_head SET size = $1 WHERE id = 1`, len(secs))

	s, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last, from int64
	if err := conn.QueryRow(ctx, `SELECT last_ts, ordered_from FROM audit_head WHERE id = 1`).Scan(&last, &from); err != nil {
		t.Fatal(err)
	}
	if last != at(len(secs)-1).UnixNano() || from != 9 {
		t.Fatalf("after the migration: last_ts %d, ordered_from %d; want %d, 9", last, from, at(len(secs)-1).UnixNano())
	}
	checkTimeRanges(t, s, t0, secs, 0, [][2]int{{4, 9}, {0, 3}, {5, 100}, {9, 12}})

	// Appends keep order from the last event on.
	early := Record{Index: int64(len(secs)), Time: at(len(secs) - 1).Add(-time.Second), Kind: "statement", Data: []byte(`{}`)}
	err = s.AppendEvents(ctx, []Record{early}, Head{Size: int64(len(secs)) + 1})
	var ce *ConflictError
	if !errors.As(err, &ce) || !ce.Last.Equal(at(len(secs)-1)) {
		t.Fatalf("append earlier than the last event: err = %v, want a ConflictError naming %s", err, at(len(secs)-1))
	}

	// The previous release appends with neither check nor last_ts, with
	// its own statement: a batch out of order within itself (20 s, then
	// 15 s) after events at 13 s.
	appendPrevious := func(from int, at ...int) {
		t.Helper()
		n := len(at)
		idx, ts, str, hash := make([]int64, n), make([]int64, n), make([]string, n), make([][]byte, n)
		for i, sec := range at {
			idx[i], ts[i], str[i], hash[i] = int64(from+i), t0.Add(time.Duration(sec)*time.Second).UnixNano(), "x", make([]byte, 32)
		}
		var appended int64
		if err := conn.QueryRow(ctx, previousAppendSQL, from+n, []byte{}, from, idx, ts, str, str, str, str, str, str, str, hash,
			[]string{}, []int64{}).Scan(&appended); err != nil || appended != 1 {
			t.Fatalf("previous release's append: %d, %v", appended, err)
		}
	}
	appendPrevious(len(secs), 20, 15)
	secs = append(secs, 20, 15)
	if err := conn.QueryRow(ctx, `SELECT last_ts, ordered_from FROM audit_head WHERE id = 1`).Scan(&last, &from); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(secs) - 1); from != want || last != t0.Add(15*time.Second).UnixNano() {
		t.Fatalf("after an append out of order: ordered_from %d, last_ts %d; want %d and 15 s", from, last, want)
	}
	checkTimeRanges(t, s, t0, secs, 0, [][2]int{{0, 3}, {14, 16}, {12, 100}, {16, 21}})

	// This release appends after it; where order begins stays.
	next := Record{Index: int64(len(secs)), Time: t0.Add(16 * time.Second), Kind: "statement", Data: []byte(`{}`)}
	if err := s.AppendEvents(ctx, []Record{next}, Head{Size: int64(len(secs)) + 1}); err != nil {
		t.Fatal(err)
	}
	secs = append(secs, 16)
	checkTimeRanges(t, s, t0, secs, 0, [][2]int{{0, 3}, {14, 17}, {16, 17}, {20, 21}})

	// Retention removes part of the events out of order, then all of them:
	// queries find what a filter finds.
	exec(`ALTER TABLE audit_events DISABLE TRIGGER audit_events_prune_only`)
	exec(`DELETE FROM audit_events WHERE idx < 5`)
	checkTimeRanges(t, s, t0, secs, 5, [][2]int{{0, 3}, {4, 9}, {9, 12}, {0, 100}, {15, 17}})
	exec(`DELETE FROM audit_events WHERE idx < 15`)
	checkTimeRanges(t, s, t0, secs, 15, [][2]int{{4, 9}, {14, 16}, {15, 17}, {0, 100}})
}

// previousAppendSQL is the previous release's append statement, which a
// replica not yet upgraded still runs.
const previousAppendSQL = `WITH head AS (
	UPDATE audit_head SET size = $1, hashes = $2 WHERE id = 1 AND size = $3 RETURNING 1
), events AS (
	INSERT INTO audit_events (idx, ts, kind, session_id, principal, connection, decision, outcome, data, hash)
	SELECT * FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[],
		$10::text[], $11::text[], $12::text[], $13::bytea[])
	WHERE EXISTS (SELECT FROM head)
), tables AS (
	INSERT INTO audit_event_tables (name, idx)
	SELECT * FROM unnest($14::text[], $15::bigint[])
	WHERE EXISTS (SELECT FROM head)
)
SELECT count(*) FROM head`
