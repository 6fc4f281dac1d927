package audit_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// clock is a fake clock that moves one millisecond per reading, so every
// event has its own time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// testKey is a fixed Ed25519 note key, so checkpoints are reproducible.
func testKey(t testing.TB) (note.Signer, note.Verifier) {
	skey, vkey, err := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "gatehouse.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

type env struct {
	db    storetest.DB
	st    store.Store
	log   *audit.Log
	clock *clock
	v     note.Verifier
}

func newEnv(t *testing.T, newDB func(*testing.T) storetest.DB, opts ...audit.Option) *env {
	t.Helper()
	e := &env{db: newDB(t), clock: newClock()}
	var err error
	if e.st, err = e.db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	var s note.Signer
	s, e.v = testKey(t)
	e.log, err = audit.Open(context.Background(), e.st, s, e.clock.Now, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Shutdown(context.Background()) })
	return e
}

func stmt(i int) audit.Event {
	return audit.Event{
		Kind:       audit.KindStatement,
		SessionID:  fmt.Sprintf("s%d", i%3),
		Principal:  &audit.Principal{Issuer: "static", Subject: "ci-agent", Name: "ci-agent", Groups: []string{"agents"}},
		Source:     "127.0.0.1:5000",
		Connection: "shop",
		Role:       "reader",
		Database:   "shop",
		Protocol:   "postgres",
		Statement:  fmt.Sprintf("SELECT * FROM payments WHERE id < %d", i),
		Tables:     []string{"payments"},
		Facts:      []byte(`{"command":"SELECT","reads":["payments"]}`),
		Decision:   "allow",
		Rule:       "default",
	}
}

func (e *env) appendN(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := e.log.Append(context.Background(), stmt(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// appendCheckpointed appends groups of each events, signing a checkpoint
// after each group.
func (e *env) appendCheckpointed(t *testing.T, groups, each int) {
	t.Helper()
	for range groups {
		e.appendN(t, each)
		if _, err := e.log.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) verify(t *testing.T) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), e.st, note.VerifierList(e.v))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func forEachBackend(t *testing.T, fn func(t *testing.T, newDB func(*testing.T) storetest.DB)) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.NewDB) })
	}
}

func TestRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, newDB)
		kinds := []audit.Kind{audit.KindGatewayStart, audit.KindAuthSuccess, audit.KindSessionStart,
			audit.KindStatement, audit.KindStatementOutcome, audit.KindSessionEnd}
		for i, k := range kinds {
			ev := stmt(i)
			ev.Kind = k
			if k == audit.KindStatementOutcome {
				ev.Outcome = &audit.Outcome{CommandTag: "SELECT 3", Rows: 3}
			}
			idx, err := e.log.Append(ctx, ev)
			if err != nil || idx != int64(i) {
				t.Fatalf("Append %d = %d, %v", i, idx, err)
			}
		}
		for _, n := range []int{5, 16} { // checkpoints at 6, 11 and 27 events
			if _, err := e.log.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			e.appendN(t, n)
		}
		c, err := e.log.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := e.st.Events(ctx, store.Query{Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		th, err := audit.OpenCheckpoint(c.Note, note.VerifierList(e.v))
		if err != nil {
			t.Fatal(err)
		}
		if th.Size != 27 || th.Root != audit.ReferenceRoot(t, recs) {
			t.Fatalf("checkpoint %+v, want size 27 and root %v", th, audit.ReferenceRoot(t, recs))
		}
		rep := e.verify(t)
		if !rep.OK() || rep.TreeSize != 27 || rep.VerifiedCheckpoints != 3 || rep.Unsigned != 0 || rep.FirstBad != -1 {
			t.Fatalf("Verify = %+v", rep)
		}
		got, err := audit.Query(ctx, e.st, store.Query{Kind: string(audit.KindStatementOutcome)})
		if err != nil || len(got) != 1 || got[0].Index != 4 || got[0].Event.Outcome.CommandTag != "SELECT 3" {
			t.Fatalf("Query outcome = %+v, %v", got, err)
		}
		if got, _ := e.st.Events(ctx, store.Query{Outcome: "success"}); len(got) != 1 {
			t.Errorf("outcome filter found %d events", len(got))
		}
		if got, _ := e.st.Events(ctx, store.Query{Table: "payments", Principal: "ci-agent"}); len(got) != 27 {
			t.Errorf("table filter found %d events", len(got))
		}
	})
}

func TestGroupCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		const workers, each = 8, 40
		e := newEnv(t, newDB)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			seen = map[int64]bool{}
		)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					idx, err := e.log.Append(context.Background(), stmt(i))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[idx] {
						t.Errorf("index %d handed out twice", idx)
					}
					seen[idx] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		st := e.log.Stats()
		t.Logf("%d events in %d transactions", st.Events, st.Batches)
		if st.Events != workers*each || len(seen) != workers*each {
			t.Fatalf("committed %d events, %d distinct indexes; want %d", st.Events, len(seen), workers*each)
		}
		if st.Batches >= st.Events {
			t.Errorf("%d transactions for %d events: no batching", st.Batches, st.Events)
		}
		if _, err := e.log.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		if rep := e.verify(t); !rep.OK() || rep.TreeSize != workers*each {
			t.Fatalf("Verify = %+v", rep)
		}
	})
}

// TestReplicas runs two Logs on one store, as two gateway replicas would,
// one with its clock an hour ahead: appends interleave, indexes never
// collide, the result verifies and is in time order, the other replica's
// events re-stamped no earlier than the ones before them.
func TestReplicas(t *testing.T) {
	for _, b := range storetest.SharedBackends {
		t.Run(b.Name, func(t *testing.T) { testReplicas(t, b.NewDB(t)) })
	}
}

func testReplicas(t *testing.T, db storetest.DB) {
	s, v := testKey(t)
	var logs []*audit.Log
	clocks := []func() time.Time{
		func() time.Time { return time.Now().Add(time.Hour) },
		time.Now,
	}
	var warnings bytes.Buffer
	loggers := []*slog.Logger{nil, slog.New(slog.NewTextHandler(&warnings, nil))}
	for i := 0; i < 2; i++ {
		st, err := db.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l, err := audit.Open(context.Background(), st, s, clocks[i], loggers[i])
		if err != nil {
			t.Fatal(err)
		}
		defer l.Shutdown(context.Background())
		logs = append(logs, l)
	}
	// The replica ahead first, so that the other's first append must be
	// re-stamped; then both at once.
	for _, l := range logs {
		if _, err := l.Append(context.Background(), stmt(0)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(l *audit.Log) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := l.Append(context.Background(), stmt(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(logs[w%2])
	}
	wg.Wait()
	if _, err := logs[1].Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := db.Open()
	defer st.Close()
	rep, err := audit.Verify(context.Background(), st, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("finding %+v", f) // time-order among them, were the clocks trusted
	}
	if ahead, behind := logs[0].Stats().Restamped, logs[1].Stats().Restamped; ahead != 0 || behind == 0 {
		t.Errorf("re-stamped: %d by the replica ahead, %d by the one behind; want 0 and some", ahead, behind)
	}
	// One warning, however many batches were re-stamped: once a minute.
	if n := strings.Count(warnings.String(), "clock is behind the log's"); n != 1 {
		t.Errorf("%d clock warnings from the replica behind, want 1:\n%s", n, warnings.String())
	}
	if rep.TreeSize != 162 || rep.VerifiedCheckpoints != 1 {
		t.Fatalf("Verify = %+v", rep)
	}
	// Every event comes after the first of the replica ahead, so every one
	// carries its clock or later; a time range finds them as any other.
	recs, err := st.Events(context.Background(), store.Query{Since: time.Now().Add(30 * time.Minute), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	all, err := st.Events(context.Background(), store.Query{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	first := -1
	for i, r := range all {
		if r.Time.After(time.Now().Add(30 * time.Minute)) {
			first = i
			break
		}
	}
	if first != 0 || len(recs) != len(all) {
		t.Errorf("since the replica ahead began: %d events, want the last %d of %d", len(recs), len(all)-first, len(all))
	}
}

// dialect adapts tamper SQL to the backend.
type dialect struct {
	name string
	db   storetest.DB
}

func (d dialect) exec(t *testing.T, sql string) {
	t.Helper()
	if err := d.db.Exec(sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// disableGuards removes the append-only triggers, as an intruder with
// database access would before editing.
func (d dialect) disableGuards(t *testing.T) {
	if d.name == "postgres" {
		d.exec(t, `ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE audit_event_tables DISABLE TRIGGER USER`)
		return
	}
	d.exec(t, `DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;
		DROP TRIGGER audit_event_tables_no_delete`)
}

func (d dialect) bytes(b []byte) string {
	if d.name == "postgres" {
		return `'\x` + hex.EncodeToString(b) + `'::bytea`
	}
	return `x'` + hex.EncodeToString(b) + `'`
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func TestTamper(t *testing.T) {
	type tamperCtx struct {
		d    dialect
		recs []store.Record
	}
	setRow := func(t *testing.T, c tamperCtx, idx int64, r store.Record, withHash bool) {
		sql := fmt.Sprintf("UPDATE audit_events SET data = %s", quote(string(r.Data)))
		if withHash {
			sql += ", hash = " + c.d.bytes(r.Hash[:]) + fmt.Sprintf(", ts = %d", r.Time.UnixNano())
		}
		c.d.exec(t, sql+fmt.Sprintf(" WHERE idx = %d", idx))
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, c tamperCtx)
		kind   audit.FindingKind
		first  int64
	}{
		{"edit event", func(t *testing.T, c tamperCtx) {
			r := c.recs[7]
			r.Data = bytes.Replace(r.Data, []byte(`"allow"`), []byte(`"deny"`), 1)
			setRow(t, c, 7, r, false)
		}, audit.FindingAltered, 7},
		{"edit event and hash", func(t *testing.T, c tamperCtx) {
			r := c.recs[7]
			r.Data = bytes.Replace(r.Data, []byte(`payments`), []byte(`orders`), 1)
			r.Hash = tlog.RecordHash(r.Data)
			setRow(t, c, 7, r, true)
		}, audit.FindingRootMismatch, 5}, // the checkpoint at 5 still holds
		{"delete event", func(t *testing.T, c tamperCtx) {
			c.d.exec(t, `DELETE FROM audit_events WHERE idx = 6`)
		}, audit.FindingMissing, 6},
		{"swap events", func(t *testing.T, c tamperCtx) {
			setRow(t, c, 3, c.recs[12], false)
			setRow(t, c, 12, c.recs[3], false)
		}, audit.FindingAltered, 3},
		{"swap events and hashes", func(t *testing.T, c tamperCtx) {
			setRow(t, c, 3, c.recs[12], true)
			setRow(t, c, 12, c.recs[3], true)
		}, audit.FindingTimeOrder, 3},
		{"truncate tail", func(t *testing.T, c tamperCtx) {
			c.d.exec(t, `DELETE FROM audit_events WHERE idx >= 15`)
			c.d.exec(t, `UPDATE audit_head SET size = 15`)
		}, audit.FindingTruncated, 15},
		{"cut tail, head row left", func(t *testing.T, c tamperCtx) {
			c.d.exec(t, `DELETE FROM audit_events WHERE idx >= 18`)
		}, audit.FindingTruncated, 18},
		{"hide from queries", func(t *testing.T, c tamperCtx) {
			c.d.exec(t, `UPDATE audit_events SET principal = 'someone-else' WHERE idx = 9`)
		}, audit.FindingColumns, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
				ctx := context.Background()
				e := newEnv(t, newDB)
				e.appendCheckpointed(t, 4, 5) // checkpoints at 5, 10, 15, 20
				recs, err := e.st.Events(ctx, store.Query{Limit: -1})
				if err != nil {
					t.Fatal(err)
				}
				if rep := e.verify(t); !rep.OK() {
					t.Fatalf("before tampering: %+v", rep.Findings)
				}
				d := dialect{name: map[bool]string{true: "postgres", false: "sqlite"}[strings.Contains(t.Name(), "postgres")], db: e.db}
				d.disableGuards(t)
				tc.tamper(t, tamperCtx{d: d, recs: recs})
				rep := e.verify(t)
				if rep.OK() {
					t.Fatal("Verify found nothing")
				}
				if rep.FirstBad != tc.first {
					t.Errorf("FirstBad = %d, want %d; findings %+v", rep.FirstBad, tc.first, rep.Findings)
				}
				found := false
				for _, f := range rep.Findings {
					found = found || (f.Kind == tc.kind && f.Index == tc.first)
				}
				if !found {
					t.Errorf("no %s finding at %d: %+v", tc.kind, tc.first, rep.Findings)
				}
			})
		})
	}
}

// growingStore appends through grow (another writer on the same store)
// right after the store has answered Verify's query number at.
type growingStore struct {
	store.Store
	at, queries int
	grow        func()
}

func (g *growingStore) Events(ctx context.Context, q store.Query) ([]store.Record, error) {
	recs, err := g.Store.Events(ctx, q)
	if g.queries++; g.queries == g.at {
		g.grow()
	}
	return recs, err
}

// TestVerifyWhileAppending: a log that grows while Verify reads it (a
// live gateway's, verified through the API or a scheduled check) is
// intact, and Verify reads on to its new end, rather than reporting the
// head row that counts the new events as a cut tail. The growth comes
// after the first page of events, and after the empty page that follows
// a full one (2,000 events, verifyPage).
func TestVerifyWhileAppending(t *testing.T) {
	for _, tc := range []struct {
		name       string
		events, at int
	}{
		{"after a short page", 30, 1},
		{"after an empty page", 2000, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
				e := newEnv(t, newDB)
				e.appendN(t, tc.events)
				// Verify reads the prune markers and checkpoints, then
				// events: the growth lands between a page and the head row.
				g := &growingStore{Store: e.st, at: tc.at, grow: func() { e.appendN(t, 5) }}
				rep, err := audit.Verify(context.Background(), g, note.VerifierList(e.v))
				if err != nil {
					t.Fatal(err)
				}
				if !rep.OK() {
					t.Fatalf("findings on a log that grew while read: %+v", rep.Findings)
				}
				if g.queries < tc.at {
					t.Fatalf("Verify made %d queries: the log never grew under it", g.queries)
				}
				if want := int64(tc.events + 5); rep.TreeSize != want {
					t.Errorf("TreeSize %d, want %d: Verify stopped before the new end", rep.TreeSize, want)
				}
			})
		})
	}
}

func TestStoreFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, newDB)
		e.appendN(t, 3)
		// A real failure inside the store's transaction, switched on and off
		// from outside as a full disk or a lost lock would be.
		d := e.db
		if strings.Contains(t.Name(), "postgres") {
			if err := d.Exec(`CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'disk full'; END $$;
				CREATE TRIGGER fail BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION fail()`); err != nil {
				t.Fatal(err)
			}
		} else if err := d.Exec(`CREATE TRIGGER fail BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
			t.Fatal(err)
		}
		// A journaled store takes appends until its indexer meets the
		// failure; they are durable in the journal and indexed once the
		// store recovers.
		accepted, failed := int64(0), int64(0)
		for failed < 2 {
			_, err := e.log.Append(ctx, stmt(int(failed)))
			switch {
			case err != nil && strings.Contains(err.Error(), "disk full"):
				failed++
			case err == nil && d.Exclusive && accepted < 200:
				accepted++
				time.Sleep(5 * time.Millisecond)
			default:
				t.Fatalf("Append while the store fails: err = %v", err)
			}
		}
		drop := `DROP TRIGGER fail`
		if strings.Contains(t.Name(), "postgres") {
			drop = `DROP TRIGGER fail ON audit_events`
		}
		if err := d.Exec(drop); err != nil {
			t.Fatal(err)
		}
		var (
			idx int64
			err error
		)
		// A journal's indexer retries on its own schedule; until then it
		// keeps refusing.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			idx, err = e.log.Append(ctx, stmt(9))
			if err == nil || !d.Exclusive || time.Now().After(deadline) {
				break
			}
			failed++
		}
		window := 3 + accepted
		if err != nil || idx != window+1 {
			t.Fatalf("Append after recovery = %d, %v; want %d (after the failure window event)", idx, err, window+1)
		}
		got, err := audit.Query(ctx, e.st, store.Query{Kind: string(audit.KindStoreFailureWindow)})
		if err != nil || len(got) != 1 || got[0].Index != window {
			t.Fatalf("failure window events: %+v, %v", got, err)
		}
		x := got[0].Event.Extra
		if x["failed_events"] != float64(failed) || x["start"] == "" ||
			!strings.Contains(fmt.Sprint(x["last_error"]), "disk full") {
			t.Errorf("failure window extra = %v", x)
		}
		if s := e.log.Stats(); s.Failed != failed {
			t.Errorf("Stats.Failed = %d, want %d", s.Failed, failed)
		}
		if _, err := e.log.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if rep := e.verify(t); !rep.OK() || rep.TreeSize != window+2 {
			t.Fatalf("Verify = %+v", rep)
		}

		// A closed store: nothing can be written, Append says so.
		e.st.Close()
		if _, err := e.log.Append(ctx, stmt(0)); err == nil {
			t.Fatal("Append on a closed store succeeded")
		}
	})
}

func TestCheckpointFormat(t *testing.T) {
	s, v := testKey(t)
	th := audit.TreeHead{Origin: "gatehouse.test/audit", Size: 3, Root: tlog.RecordHash([]byte("x"))}
	msg, err := audit.SignTreeHead(th, s)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if n.Text != th.Text() || !strings.HasPrefix(n.Text, "gatehouse.test/audit\n3\n") {
		t.Fatalf("note text %q", n.Text)
	}
	got, err := audit.OpenCheckpoint(msg, note.VerifierList(v))
	if err != nil || got != th {
		t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
	}
	// Another key must not verify it, and an edited body must not either.
	_, vkey2, _ := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)), "gatehouse.test/audit")
	v2, _ := note.NewVerifier(vkey2)
	if _, err := audit.OpenCheckpoint(msg, note.VerifierList(v2)); err == nil {
		t.Error("checkpoint verified with the wrong key")
	}
	edited := bytes.Replace(msg, []byte("\n3\n"), []byte("\n4\n"), 1)
	if _, err := audit.OpenCheckpoint(edited, note.VerifierList(v)); err == nil {
		t.Error("edited checkpoint verified")
	}
	for _, bad := range []string{"", "o\n", "o\nx\nAAAA\n", "o\n-1\n" + strings.Repeat("A", 44) + "\n", "o\n1\nAAAA\n"} {
		if _, err := audit.ParseTreeHead(bad); err == nil {
			t.Errorf("ParseTreeHead(%q) succeeded", bad)
		}
	}
}

func TestBadCheckpointFound(t *testing.T) {
	e := newEnv(t, storetest.SQLiteDB)
	e.appendN(t, 3)
	other, _, _ := audit.ParseSigner([]byte(mustKey(t)))
	msg, _ := audit.SignTreeHead(audit.TreeHead{Origin: "x", Size: 3}, other)
	if err := e.st.PutCheckpoint(context.Background(), store.Checkpoint{Size: 3, Note: msg}); err != nil {
		t.Fatal(err)
	}
	rep := e.verify(t)
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.FindingBadCheckpoint {
		t.Fatalf("findings %+v", rep.Findings)
	}
}

func mustKey(t *testing.T) string {
	skey, _, err := note.GenerateKey(nil, "other")
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

func TestLoadOrCreateSigner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	s1, vkey1, err := audit.LoadOrCreateSigner(path, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if pub, _ := os.ReadFile(path + ".pub"); strings.TrimSpace(string(pub)) != vkey1 {
		t.Errorf(".pub = %q, want %q", pub, vkey1)
	}
	s2, vkey2, err := audit.LoadOrCreateSigner(path, "ignored")
	if err != nil || vkey2 != vkey1 || s2.Name() != audit.DefaultKeyName || s1.KeyHash() != s2.KeyHash() {
		t.Fatalf("second load: %v %q %v", s2, vkey2, err)
	}
	// The key the file holds, passed as bytes (from env or a secret file).
	b, _ := os.ReadFile(path)
	s3, vkey3, err := audit.ParseSigner(b)
	if err != nil || vkey3 != vkey1 {
		t.Fatalf("ParseSigner: %q %v", vkey3, err)
	}
	v, _ := note.NewVerifier(vkey1)
	msg, _ := note.Sign(&note.Note{Text: "hello\n"}, s3)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("signature by parsed key: %v", err)
	}
	if _, _, err := audit.ParseSigner([]byte("PRIVATE+KEY+nope")); err == nil || strings.Contains(err.Error(), "nope") {
		t.Errorf("bad key error %v (must not echo the key)", err)
	}
}

func TestSinks(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []string
		fail = true
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		got = append(got, string(b))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "checkpoints")
	e := newEnv(t, storetest.SQLiteDB, audit.WithSinks(&audit.FileSink{Path: file}, &audit.WebhookSink{URL: srv.URL + "/hook?token=x"}))
	e.appendN(t, 2)
	if _, err := e.log.Checkpoint(context.Background()); err != nil { // webhook fails: logged, not returned
		t.Fatal(err)
	}
	e.appendN(t, 1)
	c, err := e.log.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if notes := strings.Count(string(b), "\n\n— "); notes != 2 || !strings.HasSuffix(string(b), string(c.Note)+"\n") {
		t.Errorf("file sink holds %d notes:\n%s", notes, b)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != string(c.Note) {
		t.Errorf("webhook got %q", got)
	}
	if s := fmt.Sprint(&audit.WebhookSink{URL: srv.URL + "/hook?token=x"}); strings.Contains(s, "token") {
		t.Errorf("sink name %q leaks the URL's query", s)
	}
}

func TestShutdown(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLiteDB, audit.WithCheckpointInterval(20*time.Millisecond))
	e.appendN(t, 3)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := e.st.LatestCheckpoint(ctx); err == nil && c.Size == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background loop signed no checkpoint")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.appendN(t, 2)
	if err := e.log.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := e.st.LatestCheckpoint(ctx); err != nil || c.Size != 5 {
		t.Fatalf("after Shutdown latest checkpoint = %d, %v; want 5", c.Size, err)
	}
	if _, err := e.log.Append(ctx, stmt(0)); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Append after Shutdown: %v", err)
	}
	if err := e.log.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// Reopening continues the same tree.
	s, _ := testKey(t)
	l, err := audit.Open(ctx, e.st, s, e.clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Shutdown(ctx)
	if idx, err := l.Append(ctx, stmt(0)); err != nil || idx != 5 {
		t.Fatalf("Append after reopen = %d, %v", idx, err)
	}
}

func TestCanonical(t *testing.T) {
	a := stmt(1)
	a.Facts = []byte(`{ "z": 1.50, "a": [ {"y":1, "b":2} ] }`)
	a.Extra = map[string]any{"k2": "v", "k1": 1}
	a.Tables = []string{"payments", "orders", "payments"}
	a.Statement = "SELECT 1 WHERE 2 > 1 AND 'a' <> 'b' & x"
	a.Time = time.Date(2025, 1, 2, 4, 4, 5, 120000000, time.FixedZone("x", 3600))
	b := a
	b.Facts = []byte(`{"a":[{"b":2,"y":1}],"z":1.50}`)
	b.Tables = []string{"orders", "payments"}
	b.Time = a.Time.UTC()
	ja, err := a.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := b.MarshalCanonical()
	if !bytes.Equal(ja, jb) {
		t.Fatalf("equal events encode differently:\n%s\n%s", ja, jb)
	}
	for _, want := range []string{`"time":"2025-01-02T03:04:05.12Z"`, `"facts":{"a":[{"b":2,"y":1}],"z":1.50}`,
		`"tables":["orders","payments"]`, `2 > 1 AND 'a' <> 'b' & x`, `"extra":{"k1":1,"k2":"v"}`} {
		if !bytes.Contains(ja, []byte(want)) {
			t.Errorf("canonical form lacks %s:\n%s", want, ja)
		}
	}
	if _, err := (audit.Event{Kind: "x", Facts: []byte(`{"a":`)}).MarshalCanonical(); err == nil {
		t.Error("invalid facts accepted")
	}
}

func TestExport(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLiteDB)
	e.appendN(t, 5)
	ev := stmt(0)
	ev.Kind, ev.Outcome = audit.KindStatementOutcome, &audit.Outcome{SQLState: "42501", Message: "denied"}
	e.log.Append(ctx, ev)

	var buf bytes.Buffer
	if err := audit.ExportJSONL(ctx, &buf, e.st, store.Query{From: 1, Limit: 4}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		var x struct {
			Index int64
			Hash  tlog.Hash
			Event json_raw
		}
		if err := unmarshal(l, &x); err != nil {
			t.Fatal(err)
		}
		if x.Index != int64(i+1) || tlog.RecordHash(x.Event) != x.Hash {
			t.Errorf("line %d: index %d, leaf hash mismatch %v", i, x.Index, tlog.RecordHash(x.Event) != x.Hash)
		}
	}

	buf.Reset()
	if err := audit.ExportOCSF(ctx, &buf, e.st, store.Query{Limit: -1}); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
	var first, last map[string]any
	unmarshal(lines[0], &first)
	unmarshal(lines[5], &last)
	if first["class_uid"] != float64(6005) || first["type_uid"] != float64(600504) || first["status"] != "Success" {
		t.Errorf("OCSF statement: %v", lines[0])
	}
	if last["status"] != "Failure" || last["status_code"] != "42501" {
		t.Errorf("OCSF failed outcome: %v", lines[5])
	}
	if q := first["query_info"].(map[string]any)["query_string"]; q != stmt(0).Statement {
		t.Errorf("query_string %v", q)
	}
}

// benchStores are the stores the gateway runs the log on: SQLite alone
// (what the offline CLI and older versions use), and SQLite behind the
// journal with each audit.durability (fsync: an fdatasync per batch; write:
// in the background every 10 ms, as gateway.WriteSyncInterval).
var benchStores = []struct {
	name string
	sync time.Duration // journal SyncInterval; -1: no journal
}{{"sqlite", -1}, {"journal-fsync", 0}, {"journal-write", 10 * time.Millisecond}}

// forEachBenchStore runs bench on a fresh log per store of benchStores.
// The benchmarks settle the store (storetest.Settle) before they stop the
// timer, so that a journal's indexing is in their time and CPU.
func forEachBenchStore(b *testing.B, bench func(b *testing.B, l *audit.Log, st store.Store)) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			l, st := benchLog(b, bs.sync)
			bench(b, l, st)
		})
	}
}

// benchLog opens a log on a fresh SQLite store, behind a journal with
// SyncInterval sync unless sync is negative; both are closed when b ends.
func benchLog(b *testing.B, sync time.Duration) (*audit.Log, store.Store) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	sq, err := store.OpenSQLite(path)
	if err != nil {
		b.Fatal(err)
	}
	var st store.Store = sq
	if sync >= 0 {
		if st, err = store.OpenJournal(ctx, sq, path+".audit-journal", store.JournalOptions{SyncInterval: sync}); err != nil {
			sq.Close()
			b.Fatal(err)
		}
	}
	s, _ := testKey(b)
	l, err := audit.Open(ctx, st, s, nil, nil)
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		l.Shutdown(ctx)
		st.Close()
	})
	return l, st
}

// parallel8 runs op b.N times from 8 goroutines, as 8 sessions would, and
// reports ops/s under unit, events per batch and CPU per op.
func parallel8(b *testing.B, l *audit.Log, st store.Store, unit string, op func() error) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := storetest.CPUTime()
	var (
		wg   sync.WaitGroup
		next = make(chan struct{}, 64)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	storetest.Settle(b, st)
	b.StopTimer()
	stats := l.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	b.ReportMetric(float64(stats.Events)/float64(max(stats.Batches, 1)), "events/batch")
	storetest.ReportCPU(b, cpu)
}

// BenchmarkAppendParallel8 measures Append throughput with 8 concurrent
// callers.
func BenchmarkAppendParallel8(b *testing.B) {
	ctx := context.Background()
	ev := stmt(1)
	forEachBenchStore(b, func(b *testing.B, l *audit.Log, st store.Store) {
		parallel8(b, l, st, "events/s", func() error {
			_, err := l.Append(ctx, ev)
			return err
		})
	})
}

// BenchmarkStatementParallel8 is the gateway's pattern at 8 clients: per op a
// durable statement event, then its outcome queued to ride the next commit.
func BenchmarkStatementParallel8(b *testing.B) {
	ctx := context.Background()
	ev := stmt(1)
	out := audit.Event{Kind: audit.KindStatementOutcome, SessionID: ev.SessionID, Principal: ev.Principal,
		Source: ev.Source, Connection: ev.Connection, Role: ev.Role, Database: ev.Database, Protocol: ev.Protocol,
		Outcome: &audit.Outcome{CommandTag: "SELECT 1", Rows: 1}, Extra: map[string]any{"statement_index": uint64(41)}}
	forEachBenchStore(b, func(b *testing.B, l *audit.Log, st store.Store) {
		parallel8(b, l, st, "statements/s", func() error {
			if _, err := l.Append(ctx, ev); err != nil {
				return err
			}
			return l.AppendAfter(out)
		})
	})
}

// BenchmarkAppendSerial is one client's cost of a durable append: the
// latency audit-before-forward adds to every statement at 1 client.
func BenchmarkAppendSerial(b *testing.B) {
	ctx := context.Background()
	ev := stmt(1)
	forEachBenchStore(b, func(b *testing.B, l *audit.Log, st store.Store) {
		b.ReportAllocs()
		b.ResetTimer()
		cpu := storetest.CPUTime()
		for i := 0; i < b.N; i++ {
			if _, err := l.Append(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
		storetest.Settle(b, st)
		b.StopTimer()
		storetest.ReportCPU(b, cpu)
	})
}

// observer records what the log reports to its Observer.
type observer struct {
	mu      sync.Mutex
	commits []int // events per commit
	tooks   []time.Duration
	waits   []time.Duration
}

func (o *observer) ObserveCommit(events int, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.commits = append(o.commits, events)
	o.tooks = append(o.tooks, took)
}

func (o *observer) ObserveWait(took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, took)
}

// TestAppendAfter checks the two ways an outcome event gets committed: it
// rides along with the next Append (one transaction for both), or, with no
// Append coming, its own timer commits it.
func TestAppendAfter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		obs := &observer{}
		e := newEnv(t, newDB, audit.WithObserver(obs))
		ctx := context.Background()
		const n = 10
		for i := 0; i < n; i++ {
			if _, err := e.log.Append(ctx, stmt(i)); err != nil {
				t.Fatal(err)
			}
			if err := e.log.AppendAfter(audit.Event{Kind: audit.KindStatementOutcome, SessionID: "s0",
				Outcome: &audit.Outcome{CommandTag: "SELECT 1", Rows: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		// Each Append after the first took the previous outcome along.
		if st := e.log.Stats(); st.Batches != n || st.Events != 2*n-1 {
			t.Fatalf("after %d statements: %+v, want %d batches of %d events", n, st, n, 2*n-1)
		}
		// The last outcome has no Append to ride: its timer commits it.
		deadline := time.Now().Add(5 * time.Second)
		for e.log.Stats().Events != 2*n {
			if time.Now().After(deadline) {
				t.Fatalf("lazy event not committed on its own: %+v", e.log.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if st := e.log.Stats(); st.Batches != n+1 {
			t.Fatalf("stats %+v, want %d batches", st, n+1)
		}
		// The observer saw each commit with the events it held (the first
		// statement alone, each later one with the outcome before it, the
		// last outcome alone) and each statement's wait, and nothing for
		// the outcomes, which nobody waits for.
		obs.mu.Lock()
		want := []int{1}
		for range n - 1 {
			want = append(want, 2)
		}
		want = append(want, 1)
		if !slices.Equal(obs.commits, want) {
			t.Errorf("events per observed commit = %v, want %v", obs.commits, want)
		}
		if len(obs.waits) != n {
			t.Errorf("%d waits observed for %d statements", len(obs.waits), n)
		}
		for i, d := range append(obs.tooks, obs.waits...) {
			if d <= 0 || d > time.Minute {
				t.Errorf("observed duration %d = %v", i, d)
			}
		}
		obs.mu.Unlock()
		if _, err := e.log.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if rep := e.verify(t); !rep.OK() || rep.TreeSize != 2*n {
			t.Fatalf("Verify = %+v", rep)
		}
	})
}

// TestFactsBufferReused: a caller may reuse its facts buffer as soon as
// Append or AppendAfter returns (the gateway's sessions do). Each event's
// facts are written into one buffer, scribbled over after every call. A
// replica with its clock an hour ahead appended first, so every batch is
// re-stamped, which encodes its events again from what the log kept. The
// stored events must hold the facts they were given, whether the log had
// seen those facts before or not, waited for or queued.
//
// The replica ahead appends again before every fourth event, so that the
// other's batches keep needing re-stamping (its times never go back, and
// would otherwise catch up after the first).
func TestFactsBufferReused(t *testing.T) {
	ctx := context.Background()
	db := storetest.SharedBackends[0].NewDB(t)
	s, _ := testKey(t)
	var logs []*audit.Log
	for _, clock := range []func() time.Time{func() time.Time { return time.Now().Add(time.Hour) }, time.Now} {
		st, err := db.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		l, err := audit.Open(ctx, st, s, clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Shutdown(ctx) })
		logs = append(logs, l)
	}
	readsOf := func(i int) string {
		if i%3 == 0 { // every third event's facts are new to the log
			return fmt.Sprintf("new%d", i)
		}
		return fmt.Sprintf("t%d", i%2)
	}
	l, buf := logs[1], make([]byte, 0, 256)
	const n = 40
	for i := range n {
		if i%4 == 0 {
			if _, err := logs[0].Append(ctx, stmt(i)); err != nil {
				t.Fatal(err)
			}
		}
		ev := stmt(i)
		ev.Connection = "behind"
		buf = fmt.Appendf(buf[:0], `[{"reads":[%q],"command":"SELECT"}]`, readsOf(i))
		ev.Facts = buf
		var err error
		if i%4 == 3 {
			_, err = l.Append(ctx, ev)
		} else {
			err = l.AppendAfter(ev)
		}
		if err != nil {
			t.Fatal(err)
		}
		for j := range buf {
			buf[j] = 'x'
		}
	}
	if err := l.Shutdown(ctx); err != nil { // commits the queued ones
		t.Fatal(err)
	}
	if l.Stats().Restamped < n/2 {
		t.Fatalf("%d events re-stamped, want at least %d", l.Stats().Restamped, n/2)
	}
	st, err := db.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Events(ctx, store.Query{Connection: "behind", Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d events stored, want %d", len(recs), n)
	}
	for i, r := range recs {
		var got struct{ Facts json.RawMessage }
		if err := json.Unmarshal(r.Data, &got); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf(`[{"command":"SELECT","reads":[%q]}]`, readsOf(i)); string(got.Facts) != want {
			t.Errorf("event %d: facts %s, want %s", i, got.Facts, want)
		}
	}
}
