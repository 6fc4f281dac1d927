package record_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func str(s string) *string { return &s }

var meta = record.Meta{
	Principal: "ci-agent", Connection: "shop", Role: "reader", Database: "shop",
	Source: "10.0.0.7:51234", Protocol: "postgres", Started: t0,
}

// env is one backend's fresh database.
type env struct {
	name string
	db   storetest.DB
	st   store.Store
}

// eachBackend runs fn on SQLite and PostgreSQL, each with a fresh database.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			db := b.NewDB(t)
			st, err := db.Open()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			fn(t, &env{name: b.Name, db: db, st: st})
		})
	}
}

// exec runs SQL as someone with direct database access would, after
// dropping the trigger that refuses UPDATEs of chunks.
func (e *env) tamper(t *testing.T, sql string) {
	t.Helper()
	drop := `DROP TRIGGER IF EXISTS recording_chunks_no_update`
	if e.name == "postgres" {
		drop = `DROP TRIGGER IF EXISTS recording_chunks_append_only ON recording_chunks`
	}
	if err := e.db.Exec(drop); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Exec(sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// session records a short session through every method and returns its
// summary.
func session(t *testing.T, st store.Store, id string, opts record.Options) record.Summary {
	t.Helper()
	ctx := context.Background()
	opts.Now = func() time.Time { return at(100) }
	r, err := record.New(ctx, st, id, meta, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		r.Client(at(1), "query", "select id, pan, note from payments order by id", nil),
		r.Columns(at(2), []string{"id", "pan", "note"}),
		r.Row(at(3), [][]byte{[]byte("1"), []byte("411111******1111"), nil}),
		r.Row(at(3), [][]byte{[]byte("22"), []byte("555555******4444"), []byte("")}),
		r.Result(at(4), "SELECT 2"),
		r.Client(at(10), "parse", "update payments set amount = $1 where id = $2", nil),
		r.Client(at(11), "bind", "update payments set amount = $1 where id = $2", []*string{str("1'0"), nil}),
		r.Result(at(12), "UPDATE 1"),
		r.Notice(at(13), "table \"payments\" is large"),
		r.Client(at(20), "query", "drop table payments", nil),
		r.Error(at(21), "42501", `gatehouse: denied by rule "no-drop"`),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	sum, err := r.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// wantEntries are the entries session records, without chunk numbers.
func wantEntries() []record.Entry {
	m := meta
	return []record.Entry{
		{Type: record.EntryMeta, Time: t0, Meta: &m},
		{Type: record.EntryClient, Time: at(1), Kind: "query", Text: "select id, pan, note from payments order by id"},
		{Type: record.EntryColumns, Time: at(2), Names: []string{"id", "pan", "note"}},
		{Type: record.EntryRow, Time: at(3), Values: [][]byte{[]byte("1"), []byte("411111******1111"), nil}},
		{Type: record.EntryRow, Time: at(3), Values: [][]byte{[]byte("22"), []byte("555555******4444"), {}}},
		{Type: record.EntryResult, Time: at(4), Text: "SELECT 2"},
		{Type: record.EntryClient, Time: at(10), Kind: "parse", Text: "update payments set amount = $1 where id = $2"},
		{Type: record.EntryClient, Time: at(11), Kind: "bind", Text: "update payments set amount = $1 where id = $2", Params: []*string{str("1'0"), nil}},
		{Type: record.EntryResult, Time: at(12), Text: "UPDATE 1"},
		{Type: record.EntryNotice, Time: at(13), Text: "table \"payments\" is large"},
		{Type: record.EntryClient, Time: at(20), Kind: "query", Text: "drop table payments"},
		{Type: record.EntryError, Time: at(21), SQLState: "42501", Text: `gatehouse: denied by rule "no-drop"`},
		{Type: record.EntryEnd, Time: at(100)},
	}
}

func readAll(t *testing.T, rd *record.Reader) []record.Entry {
	t.Helper()
	var out []record.Entry
	for e, err := range rd.Entries(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func withoutChunks(es []record.Entry) []record.Entry {
	out := make([]record.Entry, len(es))
	for i, e := range es {
		e.Chunk = 0
		out[i] = e
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name       string
			chunkBytes int
		}{
			{"one chunk", 0},
			{"a chunk per entry or two", 64},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := "s-" + strings.ReplaceAll(tc.name, " ", "-")
				sum := session(t, e.st, id, record.Options{ChunkBytes: tc.chunkBytes})
				rd, err := record.Open(context.Background(), e.st, id)
				if err != nil {
					t.Fatal(err)
				}
				got := readAll(t, rd)
				if p := rd.Problems(); len(p) != 0 {
					t.Fatalf("problems: %v", p)
				}
				if !reflect.DeepEqual(withoutChunks(got), wantEntries()) {
					t.Errorf("entries:\n got %s\nwant %s", dump(got), dump(wantEntries()))
				}
				info := rd.Info()
				want := store.Recording{
					SessionID: id, Principal: "ci-agent", Connection: "shop", Role: "reader",
					Started: t0, Ended: at(100), Bytes: sum.Bytes, Chunks: sum.Chunks,
				}
				if !reflect.DeepEqual(info, want) {
					t.Errorf("Info = %+v\nwant %+v", info, want)
				}
				chunks, err := e.st.Chunks(context.Background(), id, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(chunks)) != sum.Chunks || len(sum.SHA256) != len(chunks) {
					t.Fatalf("summary says %d chunks (%d digests), store has %d", sum.Chunks, len(sum.SHA256), len(chunks))
				}
				if tc.chunkBytes > 0 && len(chunks) < 5 {
					t.Errorf("only %d chunks with ChunkBytes %d", len(chunks), tc.chunkBytes)
				}
				var stored int64
				for i, c := range chunks {
					if sha256.Sum256(c.Data) != [32]byte(sum.SHA256[i]) {
						t.Errorf("summary digest %d does not match chunk %d", i, c.Seq)
					}
					stored += int64(len(c.Data))
					if got[0].Time.After(c.Time) {
						t.Errorf("chunk %d time %v before the session", i, c.Time)
					}
				}
				if stored != sum.StoredBytes || sum.Truncated || sum.DroppedEntries != 0 || sum.Bytes == 0 {
					t.Errorf("summary %+v; stored bytes %d", sum, stored)
				}
			})
		}
	})
}

func dump(es []record.Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n\t%v %s chunk=%d kind=%q text=%q state=%q names=%q", e.Type, e.Time.Format(time.RFC3339Nano), e.Chunk, e.Kind, e.Text, e.SQLState, e.Names)
		for _, p := range e.Params {
			if p == nil {
				b.WriteString(" param=NULL")
			} else {
				fmt.Fprintf(&b, " param=%q", *p)
			}
		}
		for _, v := range e.Values {
			if v == nil {
				b.WriteString(" NULL")
			} else {
				fmt.Fprintf(&b, " %q", v)
			}
		}
		if e.Meta != nil {
			fmt.Fprintf(&b, " meta=%+v", *e.Meta)
		}
		if e.Type == record.EntryEnd || e.Type == record.EntryTruncated {
			fmt.Fprintf(&b, " limit=%d dropped=%d/%d", e.Limit, e.DroppedEntries, e.DroppedBytes)
		}
	}
	return b.String()
}

func TestTruncation(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const max = 2000
		r, err := record.New(ctx, e.st, "big", meta, record.Options{MaxBytes: max, ChunkBytes: 512})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Client(at(1), "query", "select * from generate_series(1, 1000)", nil); err != nil {
			t.Fatal(err)
		}
		row := [][]byte{[]byte("0123456789"), []byte("abcdefghij")}
		for i := range 1000 {
			if err := r.Row(at(2+i), row); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Result(at(2000), "SELECT 1000"); err != nil {
			t.Fatal(err)
		}
		sum, err := r.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !sum.Truncated || sum.DroppedEntries == 0 || sum.Bytes > max+32 {
			t.Fatalf("summary %+v: want truncated near %d bytes with drops", sum, max)
		}
		rd, err := record.Open(ctx, e.st, "big")
		if err != nil {
			t.Fatal(err)
		}
		if !rd.Info().Truncated {
			t.Error("recording row not marked truncated")
		}
		es := readAll(t, rd)
		var rows int
		var marker, end *record.Entry
		for i := range es {
			switch es[i].Type {
			case record.EntryRow:
				if marker != nil {
					t.Fatal("a row after the truncation marker")
				}
				rows++
			case record.EntryTruncated:
				marker = &es[i]
			case record.EntryEnd:
				end = &es[i]
			case record.EntryResult:
				t.Error("the result tag after the cap was recorded")
			}
		}
		if marker == nil || marker.Limit != max {
			t.Fatalf("truncation marker %+v", marker)
		}
		if end == nil || end.DroppedEntries != int64(1000-rows+1) || end.DroppedEntries != sum.DroppedEntries || end.DroppedBytes < 20*end.DroppedEntries {
			t.Fatalf("end entry %+v after %d rows; summary %+v", end, rows, sum)
		}
		var out bytes.Buffer
		if err := record.Replay(&out, rd.Entries(ctx), record.ReplayOptions{}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "!! recording truncated at its cap of 2000 bytes") ||
			!strings.Contains(out.String(), fmt.Sprintf("(%d entries, about %d bytes, not recorded past the cap)", end.DroppedEntries, end.DroppedBytes)) {
			t.Errorf("replay does not show the truncation:\n%s", out.String())
		}
	})
}

// TestTamper edits stored chunks the way someone with database access
// could, and checks that reading reports each edit.
func TestTamper(t *testing.T) {
	type tc struct {
		name    string
		tamper  func(t *testing.T, e *env, id string)
		audited bool   // read with the session.end summary (Expect)
		want    string // in the first problem; empty: no problem
	}
	cases := []tc{
		{"intact", func(*testing.T, *env, string) {}, false, ""},
		{"intact, audited", func(*testing.T, *env, string) {}, true, ""},
		{"data edited", func(t *testing.T, e *env, id string) {
			e.tamper(t, `UPDATE recording_chunks SET data = sha256 WHERE seq = 1 AND session_id = '`+id+`'`)
		}, false, "chunk 1 does not match its stored digest"},
		{"data and digest edited", func(t *testing.T, e *env, id string) {
			// Chunk 2 of another recording, digest and all: consistent in
			// itself, caught by the chunk header.
			e.tamper(t, `UPDATE recording_chunks SET (data, sha256) = (SELECT data, sha256 FROM recording_chunks WHERE session_id = 'other' AND seq = 2) WHERE seq = 2 AND session_id = '`+id+`'`)
		}, false, `chunk 2 belongs to session "other"`},
		{"data and digest edited, audited", func(t *testing.T, e *env, id string) {
			e.tamper(t, `UPDATE recording_chunks SET (data, sha256) = (SELECT data, sha256 FROM recording_chunks WHERE session_id = 'other' AND seq = 2) WHERE seq = 2 AND session_id = '`+id+`'`)
		}, true, "chunk 2 differs from its digest in the session.end audit event"},
		{"middle chunk removed", func(t *testing.T, e *env, id string) {
			e.tamper(t, `DELETE FROM recording_chunks WHERE seq = 3 AND session_id = '`+id+`'`)
		}, false, "chunk 3 is missing"},
		{"last chunks removed", func(t *testing.T, e *env, id string) {
			e.tamper(t, `DELETE FROM recording_chunks WHERE seq >= 4 AND session_id = '`+id+`'`)
		}, false, "missing: the recording's row counts"},
		{"last chunks and count removed", func(t *testing.T, e *env, id string) {
			e.tamper(t, `DELETE FROM recording_chunks WHERE seq >= 4 AND session_id = '`+id+`'`)
			e.tamper(t, `UPDATE recordings SET chunks = 4 WHERE session_id = '`+id+`'`)
		}, false, "end entry is missing"},
		{"last chunks removed, audited", func(t *testing.T, e *env, id string) {
			e.tamper(t, `DELETE FROM recording_chunks WHERE seq >= 4 AND session_id = '`+id+`'`)
			e.tamper(t, `UPDATE recordings SET chunks = 4 WHERE session_id = '`+id+`'`)
		}, true, "missing: the session.end audit event lists"},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		session(t, e.st, "other", record.Options{ChunkBytes: 64})
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				id := fmt.Sprintf("victim-%d", i)
				sum := session(t, e.st, id, record.Options{ChunkBytes: 64})
				c.tamper(t, e, id)
				rd, err := record.Open(ctx, e.st, id)
				if err != nil {
					t.Fatal(err)
				}
				if c.audited {
					rd.Expect(sum)
				}
				problems, err := rd.Verify(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if c.want == "" {
					if len(problems) != 0 {
						t.Fatalf("problems in an intact recording: %v", problems)
					}
					return
				}
				if len(problems) == 0 || !strings.Contains(problems[0].Message, c.want) {
					t.Fatalf("problems %v, want the first to say %q", problems, c.want)
				}
				// The replay shows the damage where it is.
				var out bytes.Buffer
				if err := record.Replay(&out, rd.Entries(ctx), record.ReplayOptions{}); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), "!! DAMAGED: "+problems[0].Message) {
					t.Errorf("replay does not show the damage:\n%s", out.String())
				}
			})
		}
	})
}

// TestAudited puts the summary into a real audit log's session.end event
// and reads it back as a verifier of the recording would.
func TestAudited(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		skey, _, err := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "test")
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := note.NewSigner(skey)
		log, err := audit.Open(ctx, e.st, signer, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer log.Shutdown(ctx)
		if _, _, err := record.AuditedSummary(ctx, e.st, "s1"); !errors.Is(err, record.ErrNotAudited) {
			t.Fatalf("AuditedSummary before the event: %v, want ErrNotAudited", err)
		}
		sum := session(t, e.st, "s1", record.Options{ChunkBytes: 100})
		if _, err := log.Append(ctx, audit.Event{Kind: audit.KindSessionStart, SessionID: "s1"}); err != nil {
			t.Fatal(err)
		}
		idx, err := log.Append(ctx, audit.Event{
			Kind: audit.KindSessionEnd, SessionID: "s1",
			Extra: map[string]any{record.AuditExtraKey: sum.AuditExtra()},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, gotIdx, err := record.AuditedSummary(ctx, e.st, "s1")
		if err != nil {
			t.Fatal(err)
		}
		sum.SessionID = "s1"
		if !reflect.DeepEqual(got, sum) || gotIdx != idx {
			t.Fatalf("AuditedSummary = %+v at %d\nwant %+v at %d", got, gotIdx, sum, idx)
		}
		rd, err := record.Open(ctx, e.st, "s1")
		if err != nil {
			t.Fatal(err)
		}
		rd.Expect(got)
		if p, err := rd.Verify(ctx); err != nil || len(p) != 0 {
			t.Fatalf("Verify = %v, %v", p, err)
		}
	})
}

// TestConcurrent drives a recorder from two goroutines, as a session's two
// relay directions do. Run with -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	st := sqlite(t)
	r, err := record.New(ctx, st, "c", meta, record.Options{ChunkBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := r.Client(time.Now(), "query", fmt.Sprintf("select %d", i), nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range n {
			if err := r.Row(time.Now(), [][]byte{[]byte(fmt.Sprint(i))}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	sum, err := r.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := record.Open(ctx, st, "c")
	rd.Expect(sum)
	var clients, rows int
	var last time.Time
	for _, e := range readAll(t, rd) {
		switch e.Type {
		case record.EntryClient:
			if e.Text != fmt.Sprintf("select %d", clients) {
				t.Fatalf("client entry %d is %q", clients, e.Text)
			}
			clients++
		case record.EntryRow:
			if string(e.Values[0]) != fmt.Sprint(rows) {
				t.Fatalf("row %d is %q", rows, e.Values[0])
			}
			rows++
		}
		if e.Time.Before(last) {
			t.Fatalf("time went back: %v after %v", e.Time, last)
		}
		last = e.Time
	}
	if clients != n || rows != n || len(rd.Problems()) != 0 {
		t.Fatalf("%d clients, %d rows, problems %v", clients, rows, rd.Problems())
	}
}

func sqlite(t *testing.T) store.Store {
	t.Helper()
	st, err := storetest.SQLiteDB(t).Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStoreFailure checks that a store failure is reported to the
// recorder's callers, not swallowed.
func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	st := sqlite(t)
	r, err := record.New(ctx, st, "f", meta, record.Options{ChunkBytes: 128})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var failed error
	deadline := time.Now().Add(10 * time.Second)
	for failed == nil && time.Now().Before(deadline) {
		failed = r.Row(time.Now(), [][]byte{bytes.Repeat([]byte("x"), 100)})
	}
	if failed == nil || !strings.Contains(failed.Error(), "not stored") {
		t.Fatalf("Row after the store closed: %v", failed)
	}
	if err := r.Client(time.Now(), "query", "select 1", nil); !errors.Is(err, failed) && err.Error() != failed.Error() {
		t.Errorf("later call: %v, want the same error", err)
	}
	if _, err := r.Close(ctx); err == nil {
		t.Error("Close succeeded after a failed chunk")
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	st := sqlite(t)
	before := runtime.NumGoroutine()
	session(t, st, "x", record.Options{ChunkBytes: 64})
	// Close waited for the writer goroutine: none outlives its recorder.
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before New", n, before)
	}
	if _, err := record.New(ctx, st, "x", meta, record.Options{}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second New for one session: %v, want ErrExists", err)
	}
	r, err := record.New(ctx, st, "y", meta, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Client": r.Client(t0, "query", "", nil),
		"Row":    r.Row(t0, nil),
		"Result": r.Result(t0, ""),
		"Error":  r.Error(t0, "", ""),
		"Notice": r.Notice(t0, ""),
	} {
		if !errors.Is(err, record.ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if _, err := r.Close(ctx); !errors.Is(err, record.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := record.Open(ctx, st, "nope"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("Open(unknown): %v", err)
	}
}

func TestPrune(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		session(t, e.st, "old", record.Options{}) // ends at t0+100ms
		m := meta
		m.Started = t0.Add(48 * time.Hour)
		r, err := record.New(ctx, e.st, "new", m, record.Options{Now: func() time.Time { return m.Started.Add(time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		ids, err := record.Prune(ctx, e.st, t0.Add(24*time.Hour))
		if err != nil || !reflect.DeepEqual(ids, []string{"old"}) {
			t.Fatalf("Prune = %v, %v; want [old]", ids, err)
		}
		if _, err := record.Open(ctx, e.st, "old"); !errors.Is(err, record.ErrNotFound) {
			t.Errorf("pruned recording still opens: %v", err)
		}
		if _, err := record.Open(ctx, e.st, "new"); err != nil {
			t.Errorf("recent recording: %v", err)
		}
	})
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	st := sqlite(t)
	session(t, st, "s", record.Options{})
	rd, _ := record.Open(ctx, st, "s")
	for _, tc := range []struct {
		name string
		opts record.ReplayOptions
		want string
	}{
		{"aligned", record.ReplayOptions{}, `-- ci-agent as reader on shop (database shop) from 10.0.0.7:51234
-- 2025-01-02 UTC
[03:04:05.000] connected
[03:04:05.001] => select id, pan, note from payments order by id
 id |       pan        | note
----+------------------+------
 1  | 411111******1111 | 
 22 | 555555******4444 | 
[03:04:05.004] SELECT 2
[03:04:05.010] => [parse] update payments set amount = $1 where id = $2
[03:04:05.011] => [bind] update payments set amount = $1 where id = $2
                  $1 = '1''0', $2 = NULL
[03:04:05.012] UPDATE 1
[03:04:05.013] NOTICE: table "payments" is large
[03:04:05.020] => drop table payments
[03:04:05.021] ERROR: 42501: gatehouse: denied by rule "no-drop"
[03:04:05.100] disconnected
`},
		{"unaligned, NULL shown, other zone", record.ReplayOptions{Unaligned: true, Null: "NULL", Location: time.FixedZone("X", 3600)}, `-- ci-agent as reader on shop (database shop) from 10.0.0.7:51234
-- 2025-01-02 X
[04:04:05.000] connected
[04:04:05.001] => select id, pan, note from payments order by id
id|pan|note
1|411111******1111|NULL
22|555555******4444|
[04:04:05.004] SELECT 2
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := record.Replay(&out, rd.Entries(ctx), tc.opts); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), tc.want) {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}

// TestReplayEscapes checks that recorded bytes cannot drive a terminal.
func TestReplayEscapes(t *testing.T) {
	ctx := context.Background()
	st := sqlite(t)
	r, _ := record.New(ctx, st, "e", meta, record.Options{})
	r.Client(at(1), "query", "select '\x1b[2J'\n  from t -- \u202egnp.exe", nil)
	r.Row(at(2), [][]byte{[]byte("a\nb\x07"), {0xff, 'z'}})
	r.Close(ctx)
	rd, _ := record.Open(ctx, st, "e")
	var out bytes.Buffer
	if err := record.Replay(&out, rd.Entries(ctx), record.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, bad := range []string{"\x1b", "\x07", "\xff", "\u202e"} {
		if strings.Contains(s, bad) {
			t.Errorf("replay contains %q:\n%s", bad, s)
		}
	}
	for _, want := range []string{`select '\x1b[2J'` + "\n" + strings.Repeat(" ", 18) + "  from t -- \\u202egnp.exe", `a\nb\a`, `\xffz`} {
		if !strings.Contains(s, want) {
			t.Errorf("replay lacks %q:\n%s", want, s)
		}
	}
}

// TestRowAllocs holds Row to its budget: no allocation once the buffer has
// grown.
func TestRowAllocs(t *testing.T) {
	ctx := context.Background()
	r, err := record.New(ctx, sqlite(t), "a", meta, record.Options{ChunkBytes: 64 << 20, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	row := [][]byte{[]byte("12345"), []byte("411111******1111"), nil, []byte("2025-01-02 03:04:05")}
	now := time.Now()
	for range 1000 {
		r.Row(now, row)
	}
	if n := testing.AllocsPerRun(1000, func() { r.Row(now, row) }); n != 0 {
		t.Errorf("Row allocates %v times, want 0", n)
	}
}

// A large result is compressed a segment at a time into chunks of several
// segments; what comes back must be every row, in order, whatever the
// entry sizes: rows smaller than a segment, one larger than a segment and
// one larger than a chunk.
func TestLargeRecordingRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := sqlite(t)
	r, err := record.New(ctx, st, "large", meta, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want [][][]byte
	add := func(vals ...[]byte) {
		t.Helper()
		if err := r.Row(at(1), vals); err != nil {
			t.Fatal(err)
		}
		want = append(want, vals)
	}
	for i := range 20000 {
		add([]byte(fmt.Sprint(i)), []byte("411111******1111"), nil, []byte(fmt.Sprint("order ", i)))
		switch i {
		case 5000:
			add(bytes.Repeat([]byte("a segment and more "), 5000)) // 95 KB
		case 12000:
			add(bytes.Repeat([]byte("a chunk and more "), 40000)) // 680 KB
		}
	}
	sum, err := r.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Chunks < 4 {
		t.Errorf("%d chunks; want several for %d bytes", sum.Chunks, sum.Bytes)
	}
	if sum.StoredBytes*5 > sum.Bytes {
		t.Errorf("stored %d bytes for %d recorded: less than 5 to 1", sum.StoredBytes, sum.Bytes)
	}
	rd, err := record.Open(ctx, st, "large")
	if err != nil {
		t.Fatal(err)
	}
	var got [][][]byte
	for _, e := range readAll(t, rd) {
		if e.Type == record.EntryRow {
			got = append(got, e.Values)
		}
	}
	if p := rd.Problems(); len(p) != 0 {
		t.Fatalf("problems: %v", p)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows back, wrote %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d: got %q, want %q", i, got[i], want[i])
		}
	}
}
