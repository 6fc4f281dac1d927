package api_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/api"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
)

const (
	auditorToken = "auditor-token-0123456789"
	agentToken   = "agent-token-0123456789"
)

type fixture struct {
	srv    *httptest.Server
	st     store.Store
	log    *audit.Log
	dbPath string
}

// newFixture serves the API over a real SQLite store, audit log and
// static-token verifier, with one recorded session "s1" whose session.end
// event carries its digests.
func newFixture(t *testing.T, mutate func(*api.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "gatehouse.db")
	st, err := store.OpenSQLite(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skey, vkey, err := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "test-audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	log, err := audit.Open(ctx, st, signer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Shutdown(context.Background()) })
	ids, err := identity.New(ctx, identity.Config{Static: []identity.StaticIdentity{
		{Name: "auditor", Token: auditorToken, Groups: []string{"auditors"}},
		{Name: "ci-agent", Token: agentToken, Groups: []string{"agents"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The data path's share: a session with a statement and its recording.
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	agent := &audit.Principal{Issuer: "static", Subject: "ci-agent", Name: "ci-agent", Groups: []string{"agents"}}
	rec, err := record.New(ctx, st, "s1", record.Meta{Principal: "ci-agent", Connection: "shop", Role: "reader", Started: t0},
		record.Options{ChunkBytes: 64, Now: func() time.Time { return t0.Add(time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	rec.Client(t0.Add(time.Millisecond), "query", "select pan from payments", nil)
	rec.Columns(t0.Add(2*time.Millisecond), []string{"pan"})
	rec.Row(t0.Add(2*time.Millisecond), [][]byte{[]byte("411111******1111")})
	rec.Result(t0.Add(3*time.Millisecond), "SELECT 1")
	sum, err := rec.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []audit.Event{
		{Kind: audit.KindSessionStart, SessionID: "s1", Principal: agent, Connection: "shop"},
		{Kind: audit.KindStatement, SessionID: "s1", Principal: agent, Connection: "shop", Statement: "select pan from payments <&>",
			Tables: []string{"payments"}, Decision: "allow"},
		{Kind: audit.KindSessionEnd, SessionID: "s1", Principal: agent, Connection: "shop",
			Extra: map[string]any{record.AuditExtraKey: sum.AuditExtra()}},
	} {
		if _, err := log.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	opts := api.Options{
		Metrics: metrics.New(), Store: st, Audit: log, Verifier: ids,
		AuditorGroups: []string{"auditors"}, CheckpointVerifiers: note.VerifierList(verifier),
	}
	if mutate != nil {
		mutate(&opts)
	}
	srv := httptest.NewServer(api.NewHandler(opts))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, st: st, log: log, dbPath: dbPath}
}

func (f *fixture) get(t *testing.T, token, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", resp.Request.URL.Path, err)
	}
	return v
}

// events returns the audit log's events of kind.
func (f *fixture) events(t *testing.T, kind audit.Kind) []audit.Event {
	t.Helper()
	evs, err := audit.Query(context.Background(), f.st, store.Query{Kind: string(kind), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]audit.Event, len(evs))
	for i, e := range evs {
		out[i] = e.Event
	}
	return out
}

func TestAuth(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, token, path string
		status            int
		want              string
	}{
		{"no token", "", "/api/v1/audit/events", 401, "missing bearer token"},
		{"bad token", "guess", "/api/v1/sessions", 401, "invalid token"},
		{"not an auditor", agentToken, "/api/v1/audit/verify", 403, "ci-agent is not in an auditor group"},
		{"not an auditor, replay", agentToken, "/api/v1/sessions/s1/replay", 403, "not in an auditor group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.get(t, tc.token, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if e := decode[api.Error](t, resp); !strings.Contains(e.Error, tc.want) {
				t.Errorf("error %q, want %q", e.Error, tc.want)
			}
		})
	}
	if fails := f.events(t, audit.KindAuthFailure); len(fails) != 1 || fails[0].Reason != "api: invalid token" {
		t.Errorf("auth.failure events: %+v", fails)
	}
	denied := f.events(t, audit.KindAuditRead)
	if len(denied) != 2 || denied[0].Decision != "deny" || denied[0].Principal.Name != "ci-agent" {
		t.Errorf("denied reads: %+v", denied)
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.get(t, auditorToken, "/api/v1/audit/events?session=s1&kind=statement&table=payments")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := decode[[]audit.ExportLine](t, resp)
	if len(lines) != 1 {
		t.Fatalf("%d events, want 1", len(lines))
	}
	// The leaf bytes arrive untouched ("<&>" not escaped): the hash checks.
	if tlog.RecordHash(lines[0].Event) != lines[0].Hash || !bytes.Contains(lines[0].Event, []byte("<&>")) {
		t.Errorf("event %s does not match its hash", lines[0].Event)
	}
	reads := f.events(t, audit.KindAuditRead)
	if len(reads) != 1 {
		t.Fatalf("%d audit.read events, want 1", len(reads))
	}
	r := reads[0]
	if r.Principal.Name != "auditor" || r.Decision != "allow" || r.Extra["operation"] != "audit.query" || r.Source == "" {
		t.Errorf("audit.read event %+v", r)
	}
	if filters, _ := r.Extra["filters"].(map[string]any); filters["table"] != "payments" || filters["session"] != "s1" {
		t.Errorf("audit.read filters %v", r.Extra["filters"])
	}

	for _, tc := range []struct{ query, want string }{
		{"since=yesterday", "since"},
		{"limit=0", "limit"},
		{"from=-1", "from"},
	} {
		resp := f.get(t, auditorToken, "/api/v1/audit/events?"+tc.query)
		if e := decode[api.Error](t, resp); resp.StatusCode != 400 || !strings.HasPrefix(e.Error, tc.want) {
			t.Errorf("%s: %d %q", tc.query, resp.StatusCode, e.Error)
		}
	}
	resp = f.get(t, auditorToken, "/api/v1/audit/events?since=1h&limit=2")
	if lines := decode[[]audit.ExportLine](t, resp); len(lines) != 2 {
		t.Errorf("since=1h&limit=2: %d events", len(lines))
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t, nil)
	res := decode[api.VerifyResult](t, f.get(t, auditorToken, "/api/v1/audit/verify"))
	if !res.OK || res.VerifiedCheckpoints != 1 || res.FirstBad != -1 || res.TreeSize < 3 {
		t.Fatalf("verify %+v", res)
	}
	// An intruder edits an event behind the triggers' back.
	db, err := sql.Open("sqlite", "file:"+f.dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TRIGGER audit_events_no_update; UPDATE audit_events SET data = replace(data, 'allow', 'deny!') WHERE idx = 1`); err != nil {
		t.Fatal(err)
	}
	res = decode[api.VerifyResult](t, f.get(t, auditorToken, "/api/v1/audit/verify"))
	if res.OK || res.FirstBad != 1 || len(res.Findings) == 0 {
		t.Fatalf("verify after tampering: %+v", res)
	}
}

func TestExport(t *testing.T) {
	f := newFixture(t, nil)
	for _, format := range []string{"jsonl", "ocsf"} {
		resp := f.get(t, auditorToken, "/api/v1/audit/export?format="+format)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%s: %d %s", format, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var n int
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var v map[string]any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatalf("%s line %d: %v", format, n, err)
			}
			n++
		}
		// The fixture's 3 events, the reads of the earlier iterations and
		// this one's own audit.read, recorded before the export began.
		if want := 4 + map[string]int{"jsonl": 0, "ocsf": 1}[format]; n != want {
			t.Errorf("%s: %d lines, want %d", format, n, want)
		}
	}
	resp := f.get(t, auditorToken, "/api/v1/audit/export?format=csv")
	if resp.StatusCode != 400 {
		t.Errorf("format=csv: status %d", resp.StatusCode)
	}
}

func TestSessions(t *testing.T) {
	f := newFixture(t, nil)
	ss := decode[[]api.Session](t, f.get(t, auditorToken, "/api/v1/sessions?principal=ci-agent"))
	if len(ss) != 1 || ss[0].ID != "s1" || ss[0].Ended == nil || ss[0].Chunks < 2 {
		t.Fatalf("sessions %+v", ss)
	}
	d := decode[api.SessionDetail](t, f.get(t, auditorToken, "/api/v1/sessions/s1"))
	if !d.Intact || d.AuditIndex == nil || *d.AuditIndex != 2 || d.Statements != 1 || d.Rows != 1 || d.Meta.Role != "reader" {
		t.Fatalf("session detail %+v", d)
	}
	resp := f.get(t, auditorToken, "/api/v1/sessions/s1/replay")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "=> select pan from payments") ||
		!strings.Contains(string(body), "411111******1111") || resp.Trailer.Get(api.ProblemsTrailer) != "0" {
		t.Fatalf("replay %d trailer %q:\n%s", resp.StatusCode, resp.Trailer.Get(api.ProblemsTrailer), body)
	}
	if resp := f.get(t, auditorToken, "/api/v1/sessions/nope"); resp.StatusCode != 404 {
		t.Errorf("unknown session: %d", resp.StatusCode)
	}
	if resp := f.get(t, auditorToken, "/api/v1/sessions/nope/replay"); resp.StatusCode != 404 {
		t.Errorf("unknown session replay: %d", resp.StatusCode)
	}
	var ops []string
	for _, ev := range f.events(t, audit.KindAuditRead) {
		ops = append(ops, ev.Extra["operation"].(string)+":"+asString(ev.Extra["recording"]))
	}
	if want := "sessions.list: sessions.show:s1 sessions.replay:s1 sessions.show:nope sessions.replay:nope"; strings.Join(ops, " ") != want {
		t.Errorf("reads recorded: %v, want %s", ops, want)
	}

	// Someone with database access swaps a chunk's bytes and digest.
	db, err := sql.Open("sqlite", "file:"+f.dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TRIGGER recording_chunks_no_update;
		UPDATE recording_chunks SET (data, sha256) = (SELECT data, sha256 FROM recording_chunks WHERE seq = 0) WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	d = decode[api.SessionDetail](t, f.get(t, auditorToken, "/api/v1/sessions/s1"))
	if d.Intact || len(d.Problems) == 0 || d.Problems[0].Chunk != 1 {
		t.Fatalf("after tampering: %+v", d)
	}
	resp = f.get(t, auditorToken, "/api/v1/sessions/s1/replay")
	body, _ = io.ReadAll(resp.Body)
	if resp.Trailer.Get(api.ProblemsTrailer) == "0" || !strings.Contains(string(body), "!! DAMAGED: chunk 1") {
		t.Fatalf("replay after tampering, trailer %q:\n%s", resp.Trailer.Get(api.ProblemsTrailer), body)
	}
}

func asString(v any) string { s, _ := v.(string); return s }

// TestUnrecordedReadsRefused checks fail-closed reads: no audit log, or
// one that cannot record, means no data.
func TestUnrecordedReadsRefused(t *testing.T) {
	f := newFixture(t, func(o *api.Options) { o.Audit = nil })
	if resp := f.get(t, auditorToken, "/api/v1/sessions"); resp.StatusCode != 503 {
		t.Errorf("without an audit log: %d, want 503", resp.StatusCode)
	}
	f = newFixture(t, nil)
	f.log.Shutdown(context.Background())
	resp := f.get(t, auditorToken, "/api/v1/audit/events")
	if e := decode[api.Error](t, resp); resp.StatusCode != 503 || !strings.Contains(e.Error, "could not be recorded") {
		t.Errorf("with a closed audit log: %d %q", resp.StatusCode, e.Error)
	}
}

// TestNoAuditRoutesWithoutStore keeps the API as it was for gateways that
// do not pass a store.
func TestNoAuditRoutesWithoutStore(t *testing.T) {
	srv := httptest.NewServer(api.NewHandler(api.Options{Metrics: metrics.New()}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/sessions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}
