package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgtest"
)

// TestPostgresMigrationTimeOrder opens a store whose events, written before
// migration 0007 by replicas with clocks apart, are out of time order in
// places. The migration must find where order begins; time ranges must
// stay exact while events from before it remain (the time index answers
// them) and once retention has removed those (bisection does); and appends
// must keep order from the last event on.
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
		if m.version >= 7 {
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
	pruned := 0 // events below it are gone
	check := func(since, until int) {
		t.Helper()
		q := Query{Since: t0.Add(time.Duration(since) * time.Second), Until: t0.Add(time.Duration(until) * time.Second), Limit: -1}
		var want []int64
		for i := pruned; i < len(secs); i++ {
			if secs[i] >= since && secs[i] < until {
				want = append(want, int64(i))
			}
		}
		recs, err := s.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range recs {
			got = append(got, r.Index)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("events in [%ds, %ds) = %v, want %v", since, until, got, want)
		}
	}
	for _, r := range [][2]int{{4, 9}, {0, 3}, {5, 100}, {9, 12}} {
		check(r[0], r[1])
	}

	// Appends keep order from the last event.
	early := Record{Index: int64(len(secs)), Time: at(len(secs) - 1).Add(-time.Second), Kind: "statement", Data: []byte(`{}`)}
	if err := s.AppendEvents(ctx, []Record{early}, Head{Size: int64(len(secs)) + 1}); err == nil {
		t.Fatal("append earlier than the last event: accepted")
	}

	// Once retention has removed the events from before the order began,
	// queries bisect, and still find what a filter finds.
	exec(`ALTER TABLE audit_events DISABLE TRIGGER USER`)
	exec(`DELETE FROM audit_events WHERE idx < 9`)
	pruned = 9
	for _, r := range [][2]int{{4, 9}, {9, 12}, {0, 100}, {11, 12}} {
		check(r[0], r[1])
	}
}
