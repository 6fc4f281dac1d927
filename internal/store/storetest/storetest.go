// Package storetest is the conformance suite every store.Store
// implementation must pass, in the manner of x/mod/sumdb/storage's
// TestStorage: one set of tests, run against SQLite and PostgreSQL alike.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// DB is one fresh database behind a store implementation.
type DB struct {
	// Open opens a store on the database. Calling it again opens another
	// handle on the same database: a restart, or a second gateway replica.
	Open func() (store.Store, error)
	// Exec runs sql on the database directly, bypassing the store, as an
	// operator or an intruder with database access would.
	Exec func(sql string) error
	// Exclusive stores allow one open handle at a time: Open fails with
	// store.ErrJournalLocked while another is open.
	Exclusive bool
}

// Run runs the suite. newDB is called once per test and returns a fresh,
// empty database.
func Run(t *testing.T, newDB func(t *testing.T) DB) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, db DB, open func() store.Store)
	}{
		{"Empty", testEmpty},
		{"AppendRoundTrip", testAppendRoundTrip},
		{"Conflict", testConflict},
		{"BadAppend", testBadAppend},
		{"Query", testQuery},
		{"OwnerQueries", testOwnerQueries},
		{"TimeRanges", testTimeRanges},
		{"TimeOrder", testTimeOrder},
		{"Checkpoints", testCheckpoints},
		{"Reopen", testReopen},
		{"Replicas", testReplicas},
		{"AppendOnly", testAppendOnly},
		{"Recordings", testRecordings},
		{"RecordingQuery", testRecordingQuery},
		{"DeleteRecordings", testDeleteRecordings},
		{"ChunksAppendOnly", testChunksAppendOnly},
		{"Prune", testPrune},
		{"PruneGuards", testPruneGuards},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t)
			tc.fn(t, db, func() store.Store {
				t.Helper()
				s, err := db.Open()
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)

// Settle waits until what was appended to s is in its tables, for tests that
// look at the database directly: a store.Journal indexes behind its writers.
func Settle(t testing.TB, s store.Store) {
	t.Helper()
	if f, ok := s.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(context.Background()); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// rec builds record i with predictable fields for the query tests.
func rec(i int64) store.Record {
	data := []byte(fmt.Sprintf(`{"n":%d}`, i))
	r := store.Record{
		Index:      i,
		Time:       t0.Add(time.Duration(i) * time.Second),
		Kind:       []string{"statement", "statement.outcome", "session.start"}[i%3],
		SessionID:  fmt.Sprintf("s%d", i%2),
		Principal:  []string{"ci-agent", "approver"}[i%2],
		Connection: "shop",
		Decision:   []string{"allow", "deny", "review", ""}[i%4],
		Outcome:    []string{"", "success", "failure"}[i%3],
		Data:       data,
		Hash:       tlog.RecordHash(data),
	}
	if i%3 == 0 {
		r.Tables = []string{"orders", "payments"}
	}
	return r
}

// head returns a plausible head for size; the store treats hashes as opaque.
func head(size int64) store.Head {
	h := store.Head{Size: size}
	for s := size; s > 0; s &= s - 1 {
		h.Hashes = append(h.Hashes, tlog.RecordHash([]byte(fmt.Sprint(size, s))))
	}
	return h
}

func appendN(t *testing.T, s store.Store, from, n int64) {
	t.Helper()
	var recs []store.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, rec(i))
	}
	if err := s.AppendEvents(context.Background(), recs, head(from+n)); err != nil {
		t.Fatalf("AppendEvents(%d..%d): %v", from, from+n, err)
	}
	Settle(t, s)
}

func indexes(recs []store.Record) []int64 {
	out := []int64{}
	for _, r := range recs {
		out = append(out, r.Index)
	}
	return out
}

func testEmpty(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	h, err := s.Head(ctx)
	if err != nil || h.Size != 0 || len(h.Hashes) != 0 {
		t.Fatalf("Head = %+v, %v; want empty", h, err)
	}
	recs, err := s.Events(ctx, store.Query{})
	if err != nil || len(recs) != 0 {
		t.Fatalf("Events = %v, %v; want none", recs, err)
	}
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LatestCheckpoint err = %v, want ErrNotFound", err)
	}
	cs, err := s.Checkpoints(ctx)
	if err != nil || len(cs) != 0 {
		t.Fatalf("Checkpoints = %v, %v; want none", cs, err)
	}
}

func testAppendRoundTrip(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	appendN(t, s, 0, 5)
	appendN(t, s, 5, 1)
	h, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, head(6)) {
		t.Fatalf("Head = %+v, want %+v", h, head(6))
	}
	recs, err := s.Events(ctx, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("got %d records, want 6", len(recs))
	}
	for i, r := range recs {
		if want := rec(int64(i)); !reflect.DeepEqual(r, want) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, r, want)
		}
	}
}

func testConflict(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	appendN(t, s, 0, 3)
	for _, from := range []int64{0, 2, 4} {
		err := s.AppendEvents(ctx, []store.Record{rec(from)}, head(from+1))
		var ce *store.ConflictError
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) {
			t.Errorf("append at %d on a log of 3: err = %v, want a ConflictError", from, err)
		} else if !reflect.DeepEqual(ce.Head, head(3)) || !ce.Last.Equal(rec(2).Time) {
			t.Errorf("ConflictError = %+v, want head %+v, last %s", ce, head(3), rec(2).Time)
		}
	}
	if h, _ := s.Head(ctx); h.Size != 3 {
		t.Errorf("head size %d after conflicts, want 3", h.Size)
	}
	if recs, _ := s.Events(ctx, store.Query{}); len(recs) != 3 {
		t.Errorf("%d records after conflicts, want 3", len(recs))
	}
}

func testBadAppend(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	for name, tc := range map[string]struct {
		recs []store.Record
		next store.Head
	}{
		"none":           {nil, head(0)},
		"gap":            {[]store.Record{rec(0), rec(2)}, head(3)},
		"bad head":       {[]store.Record{rec(0), rec(1)}, head(3)},
		"time goes back": {[]store.Record{rec(0), stamped(rec(1), t0.Add(-time.Nanosecond))}, head(2)},
	} {
		if err := s.AppendEvents(ctx, tc.recs, tc.next); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: err = %v, want a validation error", name, err)
		}
	}
	if h, _ := s.Head(ctx); h.Size != 0 {
		t.Errorf("head size %d after bad appends, want 0", h.Size)
	}
}

// stamped is r with its time set to t.
func stamped(r store.Record, t time.Time) store.Record {
	r.Time = t
	return r
}

// testTimeRanges compares time-range queries with a filter over what was
// appended: runs of events share a timestamp, so a range's ends fall inside
// runs, between them and beyond the log's; then again after a prune took the
// log's first events.
func testTimeRanges(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	const n = 60
	at := func(i int64) time.Time { return t0.Add(time.Duration(i/4) * time.Second) }
	var all []store.Record
	for from := int64(0); from < n; from += 10 {
		var recs []store.Record
		for i := from; i < from+10; i++ {
			recs = append(recs, stamped(rec(i), at(i)))
		}
		if err := s.AppendEvents(ctx, recs, head(from+10)); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	Settle(t, s)
	// Before the log, at its start, inside the pruned prefix, at its edge,
	// in the middle, at and past its end: each at, just before and just
	// after a run's timestamp.
	times := []time.Time{{}}
	for _, sec := range []int{-1, 0, 3, 4, 5, 9, n/4 - 1, n / 4} {
		ts := t0.Add(time.Duration(sec) * time.Second)
		times = append(times, ts, ts.Add(-time.Nanosecond), ts.Add(time.Nanosecond))
	}
	check := func(first int64) {
		t.Helper()
		for _, since := range times {
			for _, until := range times {
				for _, q := range []store.Query{{}, {From: 13, To: 41}, {SessionID: "s1"}} {
					q.Since, q.Until, q.Limit = since, until, -1
					var want []int64
					for _, r := range all {
						if r.Index < first || r.Index < q.From || q.To > 0 && r.Index >= q.To ||
							!since.IsZero() && r.Time.Before(since) || !until.IsZero() && !r.Time.Before(until) ||
							q.SessionID != "" && r.SessionID != q.SessionID {
							continue
						}
						want = append(want, r.Index)
					}
					recs, err := s.Events(ctx, q)
					if err != nil {
						t.Fatalf("Events(%+v): %v", q, err)
					}
					if got := indexes(recs); len(got) != len(want) || len(want) > 0 && !reflect.DeepEqual(got, want) {
						t.Fatalf("Events(since %s, until %s, from %d, to %d, session %q) = %v, want %v",
							since.Sub(t0), until.Sub(t0), q.From, q.To, q.SessionID, got, want)
					}
				}
			}
		}
	}
	check(0)
	if err := s.PruneEvents(ctx, store.Prune{Head: head(18), Checkpoint: []byte("checkpoint at 18\n"), Time: t0}); err != nil {
		t.Fatal(err)
	}
	check(18)
}

// testTimeOrder appends an event stamped earlier than the last one in a
// batch of its own, also after the store is reopened: a conflict that tells
// the writer the time to re-stamp from.
func testTimeOrder(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	appendN(t, s, 0, 4)
	early := []store.Record{stamped(rec(4), rec(3).Time.Add(-time.Nanosecond))}
	try := func(s store.Store) {
		t.Helper()
		err := s.AppendEvents(ctx, early, head(5))
		var ce *store.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("append of an earlier event: err = %v, want a ConflictError", err)
		}
		if !reflect.DeepEqual(ce.Head, head(4)) || !ce.Last.Equal(rec(3).Time) {
			t.Errorf("ConflictError = head %d, last %s; want head 4, last %s", ce.Head.Size, ce.Last, rec(3).Time)
		}
		if h, _ := s.Head(ctx); h.Size != 4 {
			t.Fatalf("head size %d after the refused append, want 4", h.Size)
		}
	}
	try(s)
	s.Close()
	s = open()
	try(s)
	// The same time as the last event's is in order.
	if err := s.AppendEvents(ctx, []store.Record{stamped(rec(4), rec(3).Time)}, head(5)); err != nil {
		t.Fatalf("append at the last event's time: %v", err)
	}
}

func testQuery(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	appendN(t, s, 0, 12)
	for _, tc := range []struct {
		name string
		q    store.Query
		want []int64
	}{
		{"all", store.Query{}, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"range", store.Query{From: 3, To: 6}, []int64{3, 4, 5}},
		{"limit", store.Query{From: 10, Limit: 5}, []int64{10, 11}},
		{"limit page", store.Query{From: 2, Limit: 2}, []int64{2, 3}},
		{"time", store.Query{Since: t0.Add(4 * time.Second), Until: t0.Add(7 * time.Second)}, []int64{4, 5, 6}},
		{"kind", store.Query{Kind: "session.start"}, []int64{2, 5, 8, 11}},
		{"statement kind", store.Query{Kind: "statement.outcome"}, []int64{1, 4, 7, 10}},
		{"principal", store.Query{Principal: "approver"}, []int64{1, 3, 5, 7, 9, 11}},
		{"session", store.Query{SessionID: "s0", To: 5}, []int64{0, 2, 4}},
		{"connection", store.Query{Connection: "other"}, []int64{}},
		{"decision", store.Query{Decision: "deny"}, []int64{1, 5, 9}},
		{"outcome", store.Query{Outcome: "failure"}, []int64{2, 5, 8, 11}},
		{"table", store.Query{Table: "payments"}, []int64{0, 3, 6, 9}},
		{"table and principal", store.Query{Table: "orders", Principal: "approver"}, []int64{3, 9}},
		{"no table", store.Query{Table: "pay%"}, []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := s.Events(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := indexes(recs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Events(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func testCheckpoints(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	put := []store.Checkpoint{
		{Size: 5, Time: t0, Note: []byte("five\n")},
		{Size: 2, Time: t0.Add(time.Second), Note: []byte("two\n")},
		{Size: 5, Time: t0.Add(2 * time.Second), Note: []byte("five again\n")},
	}
	for _, c := range put {
		if err := s.PutCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := s.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Checkpoint{put[1], put[0], put[2]}; !reflect.DeepEqual(cs, want) {
		t.Errorf("Checkpoints = %+v, want %+v", cs, want)
	}
	latest, err := s.LatestCheckpoint(ctx)
	if err != nil || !reflect.DeepEqual(latest, put[2]) {
		t.Errorf("LatestCheckpoint = %+v, %v; want %+v", latest, err, put[2])
	}
}

func testReopen(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	appendN(t, s, 0, 4)
	if err := s.PutCheckpoint(ctx, store.Checkpoint{Size: 4, Time: t0, Note: []byte("n\n")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening again must find the schema current (migrations are idempotent)
	// and every committed row.
	s = open()
	h, err := s.Head(ctx)
	if err != nil || !reflect.DeepEqual(h, head(4)) {
		t.Fatalf("Head after reopen = %+v, %v", h, err)
	}
	appendN(t, s, 4, 2)
	recs, err := s.Events(ctx, store.Query{})
	if err != nil || len(recs) != 6 {
		t.Fatalf("Events after reopen: %d, %v", len(recs), err)
	}
	if _, err := s.LatestCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

// testReplicas appends from several handles at once, each retrying on
// ErrConflict as audit.Log does: every index must be used exactly once.
func testReplicas(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	if db.Exclusive {
		s := open()
		appendN(t, s, 0, 1)
		if second, err := db.Open(); !errors.Is(err, store.ErrJournalLocked) {
			if err == nil {
				second.Close()
			}
			t.Fatalf("second handle on an exclusive store: err = %v, want ErrJournalLocked", err)
		}
		return
	}
	const writers, each = 4, 10
	stores := make([]store.Store, writers)
	for i := range stores {
		stores[i] = open()
	}
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(s store.Store) {
			defer wg.Done()
			for n := 0; n < each; {
				h, err := s.Head(ctx)
				if err != nil {
					errc <- err
					return
				}
				err = s.AppendEvents(ctx, []store.Record{rec(h.Size)}, head(h.Size+1))
				switch {
				case errors.Is(err, store.ErrConflict):
					continue
				case err != nil:
					errc <- err
					return
				}
				n++
			}
		}(stores[w])
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	recs, err := stores[0].Events(ctx, store.Query{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != writers*each {
		t.Fatalf("%d records, want %d", len(recs), writers*each)
	}
	for i, r := range recs {
		if r.Index != int64(i) {
			t.Fatalf("record %d has index %d", i, r.Index)
		}
	}
	if h, _ := stores[0].Head(ctx); h.Size != writers*each {
		t.Fatalf("head size %d, want %d", h.Size, writers*each)
	}
}

// testAppendOnly checks that the schema refuses edits through the store's
// own connection. Raw edits by someone who drops the triggers are the audit
// package's tamper tests.
func testAppendOnly(t *testing.T, db DB, open func() store.Store) {
	s := open()
	appendN(t, s, 0, 2)
	for _, sql := range []string{
		`UPDATE audit_events SET data = '{}' WHERE idx = 0`,
		`DELETE FROM audit_events WHERE idx = 1`,
		`DELETE FROM audit_event_tables`,
	} {
		if err := db.Exec(sql); err == nil {
			t.Errorf("%s: succeeded on an append-only table", sql)
		}
	}
	if recs, _ := s.Events(context.Background(), store.Query{}); len(recs) != 2 || string(recs[0].Data) != `{"n":0}` {
		t.Errorf("events changed: %+v", recs)
	}
}

// BenchAppend measures AppendEvents on s, which must be empty, with batches
// of batch records shaped like the gateway's: a statement event that names
// a table followed by the previous statement's outcome, which names none.
func BenchAppend(b *testing.B, s store.Store, batch int) {
	ctx := context.Background()
	recs := make([]store.Record, batch)
	for i := range recs {
		r := &recs[i]
		// Eight sessions, with IDs of the gateway's form (16 hex digits):
		// the session index takes eight insertion points, as under pgbench.
		r.Principal, r.Connection = "ci-agent", "shop"
		r.SessionID = fmt.Sprintf("%016x", uint64(i%8+1)*0x9e3779b97f4a7c15)
		if i%2 == 0 {
			r.Kind, r.Decision, r.Tables = "statement", "allow", []string{"payments"}
			r.Data = []byte(`{"kind":"statement","time":"2025-01-02T03:04:05.123456789Z","session_id":"s0",` +
				`"principal":{"issuer":"static","subject":"ci-agent","name":"ci-agent","groups":["agents"]},` +
				`"source":"127.0.0.1:5000","connection":"shop","role":"reader","database":"shop","protocol":"postgres",` +
				`"statement":"SELECT abalance FROM pgbench_accounts WHERE aid = 42","tables":["payments"],` +
				`"facts":[{"command":"SELECT","reads":["payments"]}],"decision":"allow","rule":"default"}`)
		} else {
			r.Kind, r.Outcome = "statement.outcome", "success"
			r.Data = []byte(`{"kind":"statement.outcome","time":"2025-01-02T03:04:05.123456789Z","session_id":"s0",` +
				`"principal":{"issuer":"static","subject":"ci-agent","name":"ci-agent","groups":["agents"]},` +
				`"source":"127.0.0.1:5000","connection":"shop","role":"reader","database":"shop","protocol":"postgres",` +
				`"outcome":{"command_tag":"SELECT 1","rows":1},"extra":{"statement_index":41}}`)
		}
		r.Hash = tlog.RecordHash(r.Data)
	}
	h, err := s.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if h.Size != 0 {
		b.Fatalf("store holds %d events, want none", h.Size)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := CPUTime()
	for i := 0; i < b.N; i++ {
		t := t0.Add(time.Duration(h.Size) * time.Millisecond)
		for j := range recs {
			recs[j].Index, recs[j].Time = h.Size+int64(j), t
		}
		// The store keeps the head opaque: any hashes of the right count do.
		h = head(h.Size + int64(batch))
		if err := s.AppendEvents(ctx, recs, h); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	ReportCPU(b, cpu)
}

// CPUTime is the process's user and system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPU reports the process CPU time per op since since (a CPUTime):
// on a shared machine it varies less than ns/op, which waits on the disk
// and on other tenants.
func ReportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(CPUTime()-since)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// BenchAppendChunk stores one chunk of size bytes per op into a recording
// that s (empty) creates first.
func BenchAppendChunk(b *testing.B, s store.Store, size int) {
	ctx := context.Background()
	if err := s.CreateRecording(ctx, recording(0)); err != nil {
		b.Fatal(err)
	}
	c := chunk(recording(0).SessionID, 0)
	c.Data = make([]byte, size)
	for i := range c.Data {
		c.Data[i] = byte(i * 131 >> 3)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := CPUTime()
	for i := 0; i < b.N; i++ {
		c.Seq = int64(i)
		if err := s.AppendChunk(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ReportCPU(b, cpu)
}
