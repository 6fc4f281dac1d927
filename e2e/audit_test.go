package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite"
)

// events reads the whole audit log of the harness's store.
func events(t *testing.T, st store.Store) []audit.IndexedEvent {
	t.Helper()
	evs, err := audit.Query(context.Background(), st, store.Query{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestAuditTrailOfASession(t *testing.T) {
	h := newHarness(t)
	if _, stderr, err := h.psql("writer", agentToken, "-c", "insert into orders (id, note) values (42, 'card 4111111111111111')"); err != nil {
		t.Fatal(err, stderr)
	}
	// A bind parameter carrying a card number, through the extended protocol.
	pc := h.mustConnect("writer", agentToken)
	if _, err := pc.Exec(context.Background(), "insert into orders (id, note) values ($1, $2)", 43, "paid with 5555555555554444"); err != nil {
		t.Fatal(err)
	}
	pc.Close(context.Background())
	_, _, _ = h.psql("writer", agentToken, "-c", "drop table payments")
	// A statement that does not parse: the parser's message quotes the
	// token it stopped at, here a card number, and the facts carry it.
	_, _, _ = h.psql("writer", agentToken, "-c", "select note from orders where 1 4111111111111111")
	_, _, _ = h.psql("writer", agentToken, "-c", `select * from "4111111111111111"`) // a name goes into the facts and tables
	_, _, _ = h.psql("writer", "wrong-token", "-c", "select 1")
	h.stop() // flushes and checkpoints
	if strings.Contains(h.logs.String(), "4111111111111111") {
		t.Error("a card number reached the gateway's log")
	}

	st, err := store.OpenSQLite(h.cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kinds := map[audit.Kind]int{}
	var insert, insertOutcome, drop *audit.Event
	for i := range events(t, st) {
		ev := &events(t, st)[i].Event
		kinds[ev.Kind]++
		switch {
		case ev.Kind == audit.KindStatement && strings.HasPrefix(ev.Statement, "insert") && strings.Contains(ev.Statement, "(42,"):
			insert = ev
		case ev.Kind == audit.KindStatement && strings.HasPrefix(ev.Statement, "drop"):
			drop = ev
		case ev.Kind == audit.KindStatementOutcome && ev.Outcome != nil && ev.Outcome.CommandTag == "INSERT 0 1":
			insertOutcome = ev
		}
	}
	for _, k := range []audit.Kind{audit.KindGatewayStart, audit.KindConfigLoad, audit.KindAuthSuccess, audit.KindAuthFailure,
		audit.KindSessionStart, audit.KindSessionEnd, audit.KindStatement, audit.KindStatementOutcome, audit.KindGatewayStop} {
		if kinds[k] == 0 {
			t.Errorf("no %s event (kinds: %v)", k, kinds)
		}
	}
	if insert == nil || drop == nil || insertOutcome == nil {
		t.Fatalf("missing statement events: insert=%v drop=%v outcome=%v", insert, drop, insertOutcome)
	}
	// PCI DSS 10.2.2: who, what, when, where from, on what, decided how.
	if insert.Principal == nil || insert.Principal.Name != "ci-agent" || insert.Source == "" || insert.Connection != "shop" ||
		insert.Role != "writer" || insert.Time.IsZero() || insert.Decision != "allow" || len(insert.Facts) == 0 {
		t.Errorf("statement event lacks fields: %+v", insert)
	}
	if strings.Contains(insert.Statement, "4111111111111111") || !strings.Contains(insert.Statement, "411111******1111") {
		t.Errorf("literal card number not masked in the audit log: %q", insert.Statement)
	}
	var paramsSeen bool
	for _, ie := range events(t, st) {
		ev := ie.Event
		if ev.Kind != audit.KindStatementOutcome || len(ev.Params) != 2 || ev.Params[1] == nil {
			continue
		}
		paramsSeen = true
		if p := *ev.Params[1]; strings.Contains(p, "5555555555554444") || !strings.Contains(p, "555555******4444") {
			t.Errorf("bind parameter not masked in the audit log: %q", p)
		}
	}
	if !paramsSeen {
		t.Error("no outcome event carries the bind parameters")
	}
	var parseError bool
	for _, ie := range events(t, st) {
		b, err := json.Marshal(ie.Event)
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{"4111111111111111", "5555555555554444"} {
			if strings.Contains(string(b), leak) {
				t.Errorf("audit event %d carries card number %s: %s", ie.Index, leak, b)
			}
		}
		parseError = parseError || ie.Event.Kind == audit.KindStatement && strings.Contains(string(ie.Event.Facts), `"parse_error":true`) &&
			strings.Contains(string(ie.Event.Facts), "411111******1111")
	}
	if !parseError {
		t.Error("no statement event records the parse error with the card number masked")
	}
	if drop.Decision != "deny" || drop.Rule != "no-drop" {
		t.Errorf("drop event: decision %q rule %q", drop.Decision, drop.Rule)
	}
	rep, err := audit.Verify(context.Background(), st, h.verifiers(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || rep.Checkpoints == 0 {
		t.Errorf("verify: %d checkpoints, findings %v", rep.Checkpoints, rep.Findings)
	}
}

// TestAuditFailureRefusesStatements: when the audit store cannot write, no
// statement reaches the target; when it recovers, the failure window is
// itself recorded (PCI DSS 10.7).
func TestAuditFailureRefusesStatements(t *testing.T) {
	pgc := sharedPG(t)
	storeDB := pgc.NewDatabase(t)
	h := newHarness(t, withPostgresStore(pgc, storeDB))
	ctx := context.Background()
	c := h.mustConnect("writer", agentToken)
	if _, err := c.Exec(ctx, "insert into orders (id, note) values (1001, 'before')"); err != nil {
		t.Fatal(err)
	}
	// Break the store from outside, as a full disk or a lost database would.
	pgc.ExecIn(t, storeDB, `CREATE FUNCTION gh_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
		CREATE TRIGGER gh_fail BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION gh_fail()`)
	_, err := c.Exec(ctx, "insert into orders (id, note) values (1002, 'during')")
	if pgCode(err) != "58030" || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("statement during the audit outage: %v", err)
	}
	if got := h.scalar("select count(*)::text from orders where id = 1002"); got != "0" {
		t.Fatal("a statement whose audit record failed reached the target")
	}
	pgc.ExecIn(t, storeDB, `DROP TRIGGER gh_fail ON audit_events`)
	if _, err := c.Exec(ctx, "insert into orders (id, note) values (1003, 'after')"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	h.stop()
	st, err := store.OpenPostgres(ctx, pgc.DSN(storeDB))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	windows := 0
	for _, ev := range events(t, st) {
		if ev.Event.Kind == audit.KindStoreFailureWindow {
			windows++
		}
	}
	if windows == 0 {
		t.Error("no store.failure_window event after the outage")
	}
	if m := testutilCounter(t, h, "gatehouse_audit_write_failures_total"); m == 0 {
		t.Error("audit failure not counted")
	}
}

// verifiers reads the gateway's checkpoint verifier key from its data dir.
func (h *harness) verifiers(t *testing.T) note.Verifiers {
	b, err := os.ReadFile(gateway.SigningKeyPath(h.cfg) + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return note.VerifierList(v)
}

// TestRecordingFailureEndsSession: a session whose recording cannot be
// created (the store refuses it, as a full disk would) is ended with a
// clear error, and the statement that found out does not reach the target.
// The recording's row is created beside the relay, so the session starts
// and the failure surfaces at the next recorded message.
func TestRecordingFailureEndsSession(t *testing.T) {
	pgc := sharedPG(t)
	storeDB := pgc.NewDatabase(t)
	h := newHarness(t, withPostgresStore(pgc, storeDB))
	pgc.ExecIn(t, storeDB, `CREATE FUNCTION gh_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
		CREATE TRIGGER gh_fail BEFORE INSERT ON recordings FOR EACH ROW EXECUTE FUNCTION gh_fail()`)
	ctx := context.Background()
	c := h.mustConnect("writer", agentToken)
	var err error
	id := 3000
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); id++ {
		if _, err = c.Exec(ctx, fmt.Sprintf("insert into orders (id, note) values (%d, 'unrecorded?')", id)); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pgCode(err) != "58030" || !strings.Contains(err.Error(), "cannot record") {
		t.Fatalf("statements while the recording cannot be created: %v", err)
	}
	if got := h.scalar(fmt.Sprintf("select count(*)::text from orders where id = %d", id)); got != "0" {
		t.Fatal("the statement that found the recording broken reached the target")
	}
	if id-3000 > 5 {
		t.Errorf("%d statements ran before the session ended; the row's creation takes milliseconds", id-3000)
	}
	if _, err := c.Exec(ctx, "select 1"); err == nil {
		t.Fatal("the session went on after its recording failed")
	}
}

// TestSessionRecordingReplaysMasked: a session's recording replays what the
// client sent and got back, with card numbers masked, and its chunk hashes
// are in the audit log's session.end event.
func TestSessionRecordingReplaysMasked(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.mustConnect("writer", agentToken)
	if _, err := c.Exec(ctx, "select id, pan, customer from payments where id = $1", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "insert into orders (id, note) values (77, 'card 5555555555554444')"); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Exec(ctx, "drop table payments")
	c.Close(ctx)
	waitFor(t, func() bool { return h.gw.ActiveSessions() == 0 }, "session to end")
	h.stop()

	st, err := store.OpenSQLite(h.cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Recordings(ctx, store.RecordingQuery{})
	if err != nil || len(recs) == 0 {
		t.Fatalf("recordings: %v %v", recs, err)
	}
	id := recs[len(recs)-1].SessionID
	r, err := record.Open(ctx, st, id)
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := record.AuditedSummary(ctx, st, id)
	if err != nil {
		t.Fatalf("recording not in the audit log: %v", err)
	}
	r.Expect(sum)
	var buf strings.Builder
	if err := record.Replay(&buf, r.Entries(ctx), record.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"select id, pan, customer from payments", "************1111", "INSERT 0 1", "555555******4444", "42501"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks %q:\n%s", want, out)
		}
	}
	for _, leak := range []string{"4111111111111111", "5555555555554444"} {
		if strings.Contains(out, leak) {
			t.Errorf("replay leaks %s:\n%s", leak, out)
		}
	}
	if probs := r.Problems(); len(probs) != 0 {
		t.Errorf("recording problems: %v", probs)
	}
}

// TestAuditVerifyCommandCatchesTampering drives `gatehouse audit verify`
// offline on a gateway's data dir, before and after editing the store.
func TestAuditVerifyCommandCatchesTampering(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 3; i++ {
		if _, stderr, err := h.psql("reader", agentToken, "-c", "select count(*) from orders"); err != nil {
			t.Fatal(err, stderr)
		}
	}
	h.stop()
	cfgPath := filepath.Join(t.TempDir(), "gh.yaml")
	src, _ := os.ReadFile("../examples/pci.yaml")
	os.WriteFile(cfgPath, src, 0o600)
	verify := func() (int, string) {
		cmd := exec.Command(gatehouseBinary(t), "audit", "verify", "--config", cfgPath)
		cmd.Env = cleanEnv()
		for k, v := range baseEnv(t, h.pg, h.oidc.URL()) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, "GATEHOUSE_DATA="+h.cfg.DataDir)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := verify(); code != 0 {
		t.Fatalf("verify of an untouched log: exit %d\n%s", code, out)
	}
	db, err := sql.Open("sqlite", h.cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// An attacker with the database file edits a statement event (dropping
	// the append-only triggers first, as they would).
	for _, q := range []string{
		`DROP TRIGGER IF EXISTS audit_events_no_update`,
		`UPDATE audit_events SET data = replace(data, 'orders', 'ORDERS') WHERE idx = (SELECT min(idx) FROM audit_events WHERE kind = 'statement')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	code, out := verify()
	if code == 0 || !strings.Contains(out, "first bad event index") {
		t.Fatalf("verify after tampering: exit %d\n%s", code, out)
	}
}

// TestKill9LosesNoAcknowledgedEvent: a statement the client saw complete
// had its audit event committed first; kill -9 of the gateway right after
// loses none of them.
//
// With audit.durability: write the events are in the journal file (the
// kernel's page cache) before forwarding, which kill -9 cannot take away
// either; only a power loss could, within 10 ms.
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	for _, durability := range []string{"fsync", "write"} {
		t.Run(durability, func(t *testing.T) { testKill9(t, "audit:\n  durability: "+durability+"\n") })
	}
}

func testKill9(t *testing.T, yaml string) {
	h := newHarness(t)
	h.stop() // only its database and environment are used
	p := startProcessWith(t, h, yaml)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, p.connString("writer", agentToken))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 0; i < n; i++ {
		if _, err := c.Exec(ctx, fmt.Sprintf("insert into orders (id, note) values (%d, 'k9')", 20000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no final checkpoint
		t.Fatal(err)
	}
	err = <-p.done
	p.done <- err
	// The events acknowledged since the indexer last ran are in the
	// journal only: opening the store as the gateway does indexes them.
	path := filepath.Join(p.dataDir, "gatehouse.db")
	sq, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenJournal(ctx, sq, path+".audit-journal", store.JournalOptions{})
	if err != nil {
		sq.Close()
		t.Fatal(err)
	}
	defer st.Close()
	found := 0
	for _, ev := range events(t, st) {
		if ev.Event.Kind == audit.KindStatement && strings.Contains(ev.Event.Statement, "'k9'") {
			found++
		}
	}
	if found != n {
		t.Errorf("%d of %d acknowledged statements are in the audit log after kill -9", found, n)
	}
	vkey, err := os.ReadFile(filepath.Join(p.dataDir, "audit.key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("verify after kill -9: %+v", rep.Findings)
	}
}
