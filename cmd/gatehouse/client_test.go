package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/api"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
)

const testConfig = `data_dir: ${DATA}
listeners:
  postgres: {address: "127.0.0.1:0"}
identities:
  static:
    - {name: auditor, token: env:AUDITOR_TOKEN, groups: [auditors]}
    - {name: ci-agent, token: env:AGENT_TOKEN, groups: [agents]}
connections:
  - name: shop
    address: "127.0.0.1:5432"
    roles: [{name: reader, user: shop_reader, password: env:PW, groups: [agents]}]
api: {auditor_groups: [auditors]}
`

// site is a data directory in which a gateway has run: a store with an
// audit log, one recorded session and the signing key.
type site struct {
	dir, config string
	vars        map[string]string
	cfg         *config.Config
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, config: filepath.Join(dir, "gatehouse.yaml"), vars: map[string]string{
		"DATA": filepath.Join(dir, "data"), "AUDITOR_TOKEN": "auditor-secret-token", "AGENT_TOKEN": "agent-secret-token", "PW": "pw",
	}}
	if err := os.WriteFile(s.config, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(s.config, config.Options{LookupEnv: s.lookup})
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := gateway.OpenStore(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, _, err := audit.LoadOrCreateSigner(gateway.SigningKeyPath(cfg), "")
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(ctx, st, signer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec, err := record.New(ctx, st, "s1", record.Meta{Principal: "ci-agent", Connection: "shop", Role: "reader", Database: "shop", Started: t0},
		record.Options{ChunkBytes: 64, Now: func() time.Time { return t0.Add(2 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	rec.Client(t0.Add(time.Millisecond), "query", "select id, pan from payments", nil)
	rec.Columns(t0.Add(2*time.Millisecond), []string{"id", "pan"})
	rec.Row(t0.Add(2*time.Millisecond), [][]byte{[]byte("1"), []byte("411111******1111")})
	rec.Result(t0.Add(3*time.Millisecond), "SELECT 1")
	rec.Client(t0.Add(time.Second), "query", "drop table payments", nil)
	rec.Error(t0.Add(time.Second), "42501", `denied by rule "no-drop"`)
	sum, err := rec.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agent := &audit.Principal{Issuer: "static", Subject: "ci-agent", Name: "ci-agent", Groups: []string{"agents"}}
	for _, ev := range []audit.Event{
		{Kind: audit.KindSessionStart, SessionID: "s1", Principal: agent, Connection: "shop", Role: "reader"},
		{Kind: audit.KindStatement, SessionID: "s1", Principal: agent, Connection: "shop", Statement: "select id, pan from payments",
			Tables: []string{"payments"}, Decision: "allow", Rule: "default"},
		{Kind: audit.KindStatement, SessionID: "s1", Principal: agent, Connection: "shop", Statement: "drop table payments",
			Tables: []string{"payments"}, Decision: "deny", Rule: "no-drop"},
		{Kind: audit.KindSessionEnd, SessionID: "s1", Principal: agent, Connection: "shop",
			Extra: map[string]any{record.AuditExtraKey: sum.AuditExtra()}},
	} {
		if _, err := log.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Shutdown(ctx); err != nil { // signs a checkpoint
		t.Fatal(err)
	}
	return s
}

func (s *site) lookup(k string) (string, bool) { v, ok := s.vars[k]; return v, ok }

// run runs the gatehouse command line in-process.
func (s *site) run(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) string { v, _ := s.lookup(k); return v }, lookupEnv: s.lookup}
	status = run(context.Background(), env, args)
	return out.String(), errb.String(), status
}

// exec edits the store behind the gateway's back.
func (s *site) exec(t *testing.T, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.cfg.Store.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// reads returns the audit.read events recorded so far.
func (s *site) reads(t *testing.T) []audit.Event {
	t.Helper()
	st, err := gateway.OpenStore(context.Background(), s.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := audit.Query(context.Background(), st, store.Query{Kind: string(audit.KindAuditRead), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range evs {
		out = append(out, e.Event)
	}
	return out
}

func TestAuditOffline(t *testing.T) {
	s := newSite(t)
	out, errs, st := s.run(t, "audit", "query", "--config", s.config, "--json")
	if st != 0 {
		t.Fatalf("audit query --json: %d %s", st, errs)
	}
	var lines []audit.ExportLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 5 { // 4 events and this read's own audit.read
		t.Fatalf("%d events, want 5:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if tlog.RecordHash(l.Event) != l.Hash {
			t.Errorf("event %d does not hash to its leaf hash", l.Index)
		}
	}

	out, _, st = s.run(t, "audit", "query", "--config", s.config, "--decision", "deny", "--table", "payments")
	if st != 0 || !strings.Contains(out, "drop table payments") || strings.Contains(out, "select id") ||
		!strings.HasPrefix(out, "INDEX  TIME") {
		t.Errorf("audit query --decision deny: %d\n%s", st, out)
	}
	if _, errs, st = s.run(t, "audit", "query", "--config", s.config, "--since", "last tuesday"); st != 1 || !strings.Contains(errs, "since") {
		t.Errorf("bad --since: %d %s", st, errs)
	}

	out, errs, st = s.run(t, "audit", "verify", "--config", s.config)
	if st != 0 || !strings.Contains(out, "ok\n") || !strings.Contains(out, "3 stored, 3 verified") {
		t.Fatalf("audit verify: %d\n%s%s", st, out, errs)
	}

	exp := filepath.Join(s.dir, "trail.ocsf")
	if _, errs, st = s.run(t, "audit", "export", "--config", s.config, "--format", "ocsf", "--out", exp); st != 0 {
		t.Fatalf("audit export: %d %s", st, errs)
	}
	b, _ := os.ReadFile(exp)
	if n := strings.Count(string(b), "\n"); n < 8 || !strings.Contains(string(b), `"class_uid":6005`) {
		t.Errorf("ocsf export has %d lines:\n%s", n, b)
	}
	if fi, _ := os.Stat(exp); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v", fi.Mode())
	}
	if _, errs, st = s.run(t, "audit", "export", "--config", s.config, "--out", exp); st != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("export over an existing file: %d %s", st, errs)
	}

	// Every offline read above is on the record, by the OS user.
	reads := s.reads(t)
	if len(reads) != 4 { // two queries, verify, export: refused reads are not reads
		t.Fatalf("%d audit.read events", len(reads))
	}
	for _, r := range reads {
		if r.Principal == nil || !strings.HasPrefix(r.Principal.Name, "local:") || !strings.HasPrefix(r.Source, "cli@") {
			t.Errorf("audit.read %+v", r)
		}
	}

	// Tamper with event 2 behind the triggers' back.
	s.exec(t, `DROP TRIGGER audit_events_no_update; UPDATE audit_events SET data = replace(data, 'deny', 'allow') WHERE idx = 2`)
	out, _, st = s.run(t, "audit", "verify", "--config", s.config)
	if st != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "first bad event index: 2") {
		t.Errorf("audit verify after tampering: %d\n%s", st, out)
	}
	out, _, st = s.run(t, "audit", "verify", "--config", s.config, "--json")
	var res api.VerifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || st != 1 || res.OK || res.FirstBad != 2 {
		t.Errorf("audit verify --json after tampering: %d %+v %v", st, res, err)
	}
}

// Time ranges through the command, which the store finds by bisecting the
// log's index: everything was written in the last hour, nothing before it.
func TestAuditQueryTimeRange(t *testing.T) {
	s := newSite(t)
	count := func(args ...string) int {
		t.Helper()
		out, errs, st := s.run(t, append([]string{"audit", "query", "--config", s.config, "--json"}, args...)...)
		var lines []audit.ExportLine
		if st != 0 || json.Unmarshal([]byte(out), &lines) != nil {
			t.Fatalf("audit query %v: %d %s%s", args, st, out, errs)
		}
		return len(lines)
	}
	all := count()
	if got := count("--since", "1h"); got != all+1 { // and the previous query's audit.read
		t.Errorf("audit query --since 1h: %d events, want %d", got, all+1)
	}
	if got := count("--until", "1h"); got != 0 {
		t.Errorf("audit query --until 1h: %d events, want none", got)
	}
}

func TestVerifyKey(t *testing.T) {
	s := newSite(t)
	pub := gateway.SigningKeyPath(s.cfg) + ".pub"
	moved := filepath.Join(s.dir, "elsewhere.pub")
	if err := os.Rename(pub, moved); err != nil {
		t.Fatal(err)
	}
	if _, errs, st := s.run(t, "audit", "verify", "--config", s.config); st != 1 || !strings.Contains(errs, "no checkpoint verifier key") {
		t.Errorf("without a key: %d %s", st, errs)
	}
	if out, errs, st := s.run(t, "audit", "verify", "--config", s.config, "--key", moved); st != 0 {
		t.Errorf("with --key: %d %s%s", st, out, errs)
	}
	// Someone else's key does not verify the checkpoints.
	_, vkey, _ := note.GenerateKey(nil, audit.DefaultKeyName)
	other := filepath.Join(s.dir, "other.pub")
	os.WriteFile(other, []byte(vkey+"\n"), 0o644)
	if out, _, st := s.run(t, "audit", "verify", "--config", s.config, "--key", other); st != 1 || !strings.Contains(out, "bad-checkpoint") {
		t.Errorf("with another key: %d\n%s", st, out)
	}
}

func TestSessionsOffline(t *testing.T) {
	s := newSite(t)
	out, errs, st := s.run(t, "sessions", "list", "--config", s.config)
	if st != 0 || !strings.Contains(out, "s1") || !strings.Contains(out, "ci-agent") || !strings.Contains(out, "2s") {
		t.Fatalf("sessions list: %d\n%s%s", st, out, errs)
	}
	out, _, st = s.run(t, "sessions", "show", "s1", "--config", s.config)
	if st != 0 || !strings.Contains(out, "integrity   intact") || !strings.Contains(out, "2 statements, 1 rows, 1 errors") ||
		!strings.Contains(out, "session.end event 3") {
		t.Fatalf("sessions show: %d\n%s", st, out)
	}
	// Flags after the ID, as users type them.
	out, _, st = s.run(t, "sessions", "show", "--config", s.config, "s1", "--json")
	var d api.SessionDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil || st != 0 || !d.Intact || d.Meta.Database != "shop" {
		t.Fatalf("sessions show --json: %d %v\n%s", st, err, out)
	}
	out, _, st = s.run(t, "sessions", "replay", "s1", "--config", s.config)
	want := `[03:04:05.001] => select id, pan from payments
 id |       pan
----+------------------
 1  | 411111******1111
[03:04:05.003] SELECT 1
[03:04:06.000] => drop table payments
[03:04:06.000] ERROR: 42501: denied by rule "no-drop"
[03:04:07.000] disconnected
`
	if st != 0 || !strings.HasSuffix(out, want) {
		t.Fatalf("sessions replay: %d\n%s\nwant suffix\n%s", st, out, want)
	}
	if _, errs, st = s.run(t, "sessions", "show", "nope", "--config", s.config); st != 1 || !strings.Contains(errs, "no such recording") {
		t.Errorf("unknown session: %d %s", st, errs)
	}
	if _, _, st = s.run(t, "sessions", "show", "--config", s.config); st != 2 {
		t.Errorf("show without ID: %d", st)
	}

	// A chunk deleted from the middle.
	s.exec(t, `DELETE FROM recording_chunks WHERE session_id = 's1' AND seq = 1`)
	out, _, st = s.run(t, "sessions", "show", "s1", "--config", s.config)
	if st != 1 || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, "chunk 1 is missing") {
		t.Errorf("show after tampering: %d\n%s", st, out)
	}
	out, errs, st = s.run(t, "sessions", "replay", "s1", "--config", s.config)
	if st != 1 || !strings.Contains(out, "!! DAMAGED") || !strings.Contains(errs, "is damaged") {
		t.Errorf("replay after tampering: %d\n%s%s", st, out, errs)
	}
}

func TestOfflineWithoutLog(t *testing.T) {
	s := newSite(t)
	before := len(s.reads(t))
	// An auditor who may not read the signing key: the read goes ahead,
	// unrecorded, and says so.
	if err := os.Remove(gateway.SigningKeyPath(s.cfg)); err != nil {
		t.Fatal(err)
	}
	_, errs, st := s.run(t, "sessions", "list", "--config", s.config)
	if st != 0 || !strings.Contains(errs, "warning: this read is not recorded") {
		t.Errorf("without the signing key: %d %s", st, errs)
	}
	if after := len(s.reads(t)); after != before {
		t.Errorf("audit.read events %d → %d", before, after)
	}

	s.vars["DATA"] = filepath.Join(s.dir, "empty")
	if _, errs, st := s.run(t, "sessions", "list", "--config", s.config); st != 1 || !strings.Contains(errs, "no store at") {
		t.Errorf("config naming no store: %d %s", st, errs)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "empty")); !os.IsNotExist(err) {
		t.Errorf("a read created the data dir: %v", err)
	}
}

func TestOnline(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	offline, _, _ := s.run(t, "sessions", "replay", "s1", "--config", s.config)
	st, err := gateway.OpenStore(ctx, s.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, vkey, err := audit.LoadOrCreateSigner(gateway.SigningKeyPath(s.cfg), "")
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(ctx, st, signer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Shutdown(ctx)
	verifier, _ := note.NewVerifier(vkey)
	ids, err := identity.New(ctx, gateway.IdentityConfig(s.cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(api.Options{
		Metrics: metrics.New(), Store: st, Audit: log, Verifier: ids,
		AuditorGroups: s.cfg.API.AuditorGroups, CheckpointVerifiers: note.VerifierList(verifier),
	}))
	defer srv.Close()

	// Flags, then the environment.
	out, errs, code := s.run(t, "sessions", "list", "--server", srv.URL, "--token", s.vars["AUDITOR_TOKEN"], "--json")
	var ss []api.Session
	if err := json.Unmarshal([]byte(out), &ss); err != nil || code != 0 || len(ss) != 1 || ss[0].ID != "s1" {
		t.Fatalf("sessions list --server: %d %v\n%s%s", code, err, out, errs)
	}
	// While a gateway owns the store, offline reads are refused: they would
	// append their own audit event beside the gateway's.
	if _, errs, code := s.run(t, "sessions", "replay", "s1", "--config", s.config); code != 1 ||
		!strings.Contains(errs, "locked by another process") || !strings.Contains(errs, "--server") {
		t.Errorf("offline read of a running gateway's store: %d %s", code, errs)
	}
	s.vars["GATEHOUSE_SERVER"], s.vars["GATEHOUSE_TOKEN"] = srv.URL, s.vars["AUDITOR_TOKEN"]
	online, errs, code := s.run(t, "sessions", "replay", "s1")
	if code != 0 || online != offline {
		t.Errorf("replay online (%d, %s):\n%s\noffline:\n%s", code, errs, online, offline)
	}
	if out, _, code := s.run(t, "audit", "verify"); code != 0 || !strings.Contains(out, "ok\n") {
		t.Errorf("audit verify online: %d\n%s", code, out)
	}
	out, _, code = s.run(t, "audit", "export")
	sc := bufio.NewScanner(strings.NewReader(out))
	var n int
	for sc.Scan() {
		var l audit.ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || tlog.RecordHash(l.Event) != l.Hash {
			t.Fatalf("export line %d: %v", n, err)
		}
		n++
	}
	if code != 0 || n < 8 {
		t.Errorf("audit export online: %d, %d lines", code, n)
	}
	if _, errs, code := s.run(t, "audit", "verify", "--key", "x.pub"); code != 1 || !strings.Contains(errs, "--key works offline") {
		t.Errorf("--key online: %d %s", code, errs)
	}

	s.vars["GATEHOUSE_TOKEN"] = s.vars["AGENT_TOKEN"]
	if out, errs, code := s.run(t, "audit", "query"); code != 1 || !strings.Contains(errs, "403 Forbidden: ci-agent is not in an auditor group") ||
		strings.Contains(out+errs, s.vars["AGENT_TOKEN"]) {
		t.Errorf("non-auditor: %d %s", code, errs)
	}
	// -h must not print a token taken from the environment.
	if out, errs, _ := s.run(t, "audit", "query", "-h"); strings.Contains(out+errs, s.vars["AGENT_TOKEN"]) {
		t.Errorf("-h shows the token:\n%s", errs)
	}
	delete(s.vars, "GATEHOUSE_TOKEN")
	if _, errs, code := s.run(t, "audit", "query"); code != 2 || !strings.Contains(errs, "needs a token") {
		t.Errorf("no token: %d %s", code, errs)
	}
	delete(s.vars, "GATEHOUSE_SERVER")
	if _, errs, code := s.run(t, "sessions", "list"); code != 2 || !strings.Contains(errs, "--config") {
		t.Errorf("neither --config nor --server: %d %s", code, errs)
	}
	if _, _, code := s.run(t, "sessions", "list", "--config", s.config, "--server", srv.URL); code != 2 {
		t.Errorf("both --config and --server: %d", code)
	}
	if _, _, code := s.run(t, "audit", "frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: %d", code)
	}
}
