package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/jackc/pgx/v5"
)

func TestExtendedProtocolAndPipelining(t *testing.T) {
	h := newHarness(t)
	c := h.mustConnect("writer", agentToken)
	ctx := context.Background()

	var name string
	if err := c.QueryRow(ctx, "select name from customers where id = $1", 2).Scan(&name); err != nil || name != "Alan Turing" {
		t.Fatalf("extended query: %q %v", name, err)
	}
	b := &pgx.Batch{}
	for i := 10; i < 20; i++ {
		b.Queue("insert into orders (id, note) values ($1, $2)", i, fmt.Sprintf("batch %d", i))
	}
	b.Queue("select count(*) from orders where id >= 10")
	br := c.SendBatch(ctx, b)
	for i := 0; i < 10; i++ {
		if _, err := br.Exec(); err != nil {
			t.Fatalf("batch insert %d: %v", i, err)
		}
	}
	var n int
	if err := br.QueryRow().Scan(&n); err != nil || n != 10 {
		t.Fatalf("batch count = %d, %v", n, err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	// An error inside a pipeline skips to Sync and the connection stays usable.
	b = &pgx.Batch{}
	b.Queue("select 1/0")
	b.Queue("select 1")
	br = c.SendBatch(ctx, b)
	if _, err := br.Exec(); pgCode(err) != "22012" {
		t.Errorf("division by zero: %v", err)
	}
	br.Close()
	if err := c.QueryRow(ctx, "select 42").Scan(&n); err != nil || n != 42 {
		t.Errorf("after a failed pipeline: %d %v", n, err)
	}
}

func TestCopyInAndOut(t *testing.T) {
	h := newHarness(t)
	c := h.mustConnect("writer", agentToken)
	ctx := context.Background()
	rows := [][]any{}
	for i := 100; i < 1100; i++ {
		rows = append(rows, []any{int32(i), fmt.Sprintf("copied %d", i)})
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"id", "note"}, pgx.CopyFromRows(rows))
	if err != nil || n != 1000 {
		t.Fatalf("copy in: %d %v", n, err)
	}
	var buf bytes.Buffer
	tag, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT id, note FROM orders WHERE id >= 100 ORDER BY id) TO STDOUT")
	if err != nil || tag.RowsAffected() != 1000 {
		t.Fatalf("copy out: %v %v", tag, err)
	}
	if !strings.HasPrefix(buf.String(), "100\tcopied 100\n") {
		t.Errorf("copy out starts %q", buf.String()[:30])
	}
	// A COPY the client aborts leaves nothing behind and the session usable.
	_, err = c.PgConn().CopyFrom(ctx, io.MultiReader(strings.NewReader("5000\tok\n"), errReader{}), "COPY orders (id, note) FROM STDIN")
	if err == nil {
		t.Fatal("aborted copy succeeded")
	}
	if got := h.scalar("select count(*)::text from orders where id = 5000"); got != "0" {
		t.Errorf("aborted copy left %s rows", got)
	}
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Errorf("after aborted copy: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("client gave up") }

func TestCancelRequestIsMapped(t *testing.T) {
	h := newHarness(t)
	c := h.mustConnect("reader", agentToken)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "select pg_sleep(30)")
	if err == nil {
		t.Fatal("pg_sleep(30) was not cancelled")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	// pgx closes the connection after a context cancel; the target backend
	// must have been cancelled, not left sleeping.
	time.Sleep(200 * time.Millisecond)
	if got := h.scalar("select count(*)::text from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'"); got != "0" {
		t.Errorf("target still runs the cancelled query (%s backends)", got)
	}
	// psql's own cancel path: statement_timeout is server-side, so use a
	// second connection sending the CancelRequest through pgconn.
	c2 := h.mustConnect("reader", agentToken)
	done := make(chan error, 1)
	go func() {
		_, err := c2.PgConn().Exec(context.Background(), "select pg_sleep(30)").ReadAll()
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := c2.PgConn().CancelRequest(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if pgCode(err) != "57014" {
			t.Errorf("cancelled query: %v, want 57014", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CancelRequest had no effect")
	}
}

func TestListenNotifyAndParameterStatus(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	l := h.mustConnect("reader", agentToken)
	if _, err := l.Exec(ctx, "listen jobs"); err != nil {
		t.Fatal(err)
	}
	w := h.mustConnect("writer", agentToken)
	if _, err := w.Exec(ctx, "select pg_notify('jobs', 'hello')"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := l.WaitForNotification(wctx)
	if err != nil || n.Channel != "jobs" || n.Payload != "hello" {
		t.Fatalf("notification %+v %v", n, err)
	}
	if _, err := l.Exec(ctx, "set application_name = 'agent-42'"); err != nil {
		t.Fatal(err)
	}
	if got := l.PgConn().ParameterStatus("application_name"); got != "agent-42" {
		t.Errorf("ParameterStatus application_name = %q", got)
	}
}

func TestTargetDownOrRefusingCredential(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		h := newHarness(t, withEnv("SHOP_PG_ADDR", addr))
		_, err := h.connect("reader", agentToken)
		if pgCode(err) != "08006" {
			t.Fatalf("want 08006, got %v", err)
		}
	})
	t.Run("wrong credential", func(t *testing.T) {
		h := newHarness(t, withEnv("SHOP_READER_PASSWORD", "not-the-password"))
		_, err := h.connect("reader", agentToken)
		if pgCode(err) != "08006" || !strings.Contains(err.Error(), "refused gatehouse's credential") {
			t.Fatalf("want 08006 credential refused, got %v", err)
		}
		if strings.Contains(err.Error(), "not-the-password") {
			t.Error("the credential reached the client")
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, withCfg(func(c *config.Config) { c.Listeners.Postgres.IdleTimeout = 700 * time.Millisecond }))
	c := h.mustConnect("reader", agentToken)
	ctx := context.Background()
	// A query longer than the idle timeout is activity, not idleness.
	if _, err := c.Exec(ctx, "select pg_sleep(1.2)"); err != nil {
		t.Fatalf("long query hit the idle timeout: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	_, err := c.Exec(ctx, "select 1")
	if err == nil {
		t.Fatal("idle session still open")
	}
	if code := pgCode(err); code != "57P05" && !strings.Contains(err.Error(), "idle") && !strings.Contains(err.Error(), "closed") && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("idle close: %v", err)
	}
	waitFor(t, func() bool { return h.gw.ActiveSessions() == 0 }, "idle session to end")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawStartup opens a TCP connection to the gateway, optionally upgrades to
// TLS, and returns it.
func rawConn(t *testing.T, h *harness, useTLS bool) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.pgAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if !useTLS {
		return c
	}
	c.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47})
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'S' {
		t.Fatalf("SSLRequest answer %q %v", b[0], err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	return tc
}

func startupPacket(params ...string) []byte {
	body := binary.BigEndian.AppendUint32(nil, 196608)
	for _, p := range params {
		body = append(body, p...)
		body = append(body, 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

// readError reads server messages until an ErrorResponse or EOF and returns
// the error's SQLSTATE ("" on EOF).
func readError(t *testing.T, c net.Conn) string {
	t.Helper()
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return ""
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return ""
		}
		if hdr[0] == 'E' {
			for _, f := range bytes.Split(body, []byte{0}) {
				if len(f) > 0 && f[0] == 'C' {
					return string(f[1:])
				}
			}
		}
	}
}

func TestBadStartupInput(t *testing.T) {
	h := newHarness(t)
	t.Run("garbage", func(t *testing.T) {
		c := rawConn(t, h, false)
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		if code := readError(t, c); code != "08P01" && code != "" {
			t.Errorf("garbage: %q", code)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		c := rawConn(t, h, false)
		c.Write(startupPacket("user", "reader")[:7])
		c.(*net.TCPConn).CloseWrite()
		if code := readError(t, c); code != "" && code != "08P01" {
			t.Errorf("truncated: %q", code)
		}
	})
	t.Run("oversized startup", func(t *testing.T) {
		c := rawConn(t, h, false)
		c.Write(binary.BigEndian.AppendUint32(nil, 1<<30))
		c.Write([]byte{0, 3, 0, 0})
		if code := readError(t, c); code != "08P01" {
			t.Errorf("oversized: %q", code)
		}
	})
	t.Run("gssenc refused then TLS", func(t *testing.T) {
		c := rawConn(t, h, false)
		c.Write([]byte{0, 0, 0, 8, 4, 210, 22, 48}) // GSSENCRequest
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'N' {
			t.Fatalf("GSSENCRequest answer %q %v", b[0], err)
		}
		c.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47}) // SSLRequest
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest after GSSENC: %q %v", b[0], err)
		}
	})
	t.Run("options parameter refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pgx.Connect(ctx, h.connString("reader", agentToken, "require")+" options='-c log_statement=none'")
		if pgCode(err) != "0A000" {
			t.Errorf("options: %v", err)
		}
	})
	t.Run("oversized message after login", func(t *testing.T) {
		h := newHarness(t, withCfg(func(c *config.Config) { c.Listeners.Postgres.MaxMessageBytes = 64 << 10 }))
		c := h.mustConnect("reader", agentToken)
		_, err := c.Exec(context.Background(), "select '"+strings.Repeat("x", 100<<10)+"'")
		if err == nil {
			t.Fatal("a 100 KiB query passed a 64 KiB limit")
		}
		// The gateway refuses the message from its header and closes: a
		// client still writing the rest may see that as a broken pipe, and
		// not the error sent before the close.
		if pgCode(err) != "08P01" && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "closed") &&
			!strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "broken pipe") {
			t.Errorf("oversized: %v", err)
		}
		waitFor(t, func() bool { return h.gw.ActiveSessions() == 0 }, "session to end")
	})
	t.Run("disconnect mid-COPY", func(t *testing.T) {
		c := h.mustConnect("writer", agentToken)
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte("9001\tpartial\n"))
			time.Sleep(200 * time.Millisecond)
			c.PgConn().Conn().Close()
			pw.Close()
		}()
		_, _ = c.PgConn().CopyFrom(context.Background(), pr, "COPY orders (id, note) FROM STDIN")
		waitFor(t, func() bool { return h.gw.ActiveSessions() == 0 }, "session to end")
		if got := h.scalar("select count(*)::text from orders where id = 9001"); got != "0" {
			t.Errorf("a COPY cut off by a disconnect left %s rows", got)
		}
	})
	t.Run("disconnect mid-query", func(t *testing.T) {
		c := h.mustConnect("reader", agentToken)
		go func() {
			time.Sleep(200 * time.Millisecond)
			c.PgConn().Conn().Close()
		}()
		_, _ = c.Exec(context.Background(), "select pg_sleep(2)")
		waitFor(t, func() bool { return h.gw.ActiveSessions() == 0 }, "session to end")
	})
}

func TestHealthAndMetrics(t *testing.T) {
	h := newHarness(t)
	_, _, _ = h.psql("reader", agentToken, "-c", "select 1")
	_, _, _ = h.psql("reader", "bad-token", "-c", "select 1")
	base := "http://" + h.gw.APIAddr().String()
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`gatehouse_sessions_total{connection="shop"} 1`,
		`gatehouse_auth_failures_total{reason=`,
		`gatehouse_bytes_total{connection="shop",direction="client_to_target"}`,
		`gatehouse_sessions_active{connection="shop"} 0`,
		`gatehouse_statement_duration_seconds_count{connection="shop"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The statement waited for its audit event, which a commit wrote; the
	// embedded store's journal reports its index.
	for _, want := range []string{
		`(?m)^gatehouse_audit_wait_duration_seconds_count [1-9]`,
		`(?m)^gatehouse_audit_commit_duration_seconds_count [1-9]`,
		`(?m)^gatehouse_audit_commit_events_sum [1-9]`,
		`(?m)^gatehouse_audit_commits_total [1-9]`,
		`(?m)^gatehouse_audit_events_total [1-9]`,
		`(?m)^gatehouse_audit_unindexed_events [0-9]`,
		`(?m)^gatehouse_audit_index_waits_total 0$`,
		`(?m)^gatehouse_audit_index_wait_seconds_total 0$`,
	} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestStatementMetricsByDecision checks the statements counter per
// decision across sessions: each session keeps the counters it has looked
// up, and a count must land on its own decision's series.
func TestStatementMetricsByDecision(t *testing.T) {
	h := newHarness(t)
	if _, _, err := h.psql("reader", agentToken, "-c", "select 1", "-c", "select 2", "-c", "drop table payments"); err == nil {
		t.Fatal("drop table payments ran through the gateway")
	}
	if _, _, err := h.psql("reader", agentToken, "-c", "select 3", "-c", "drop table payments"); err == nil {
		t.Fatal("drop table payments ran through the gateway")
	}
	resp, err := http.Get("http://" + h.gw.APIAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`(?m)^gatehouse_statements_total\{connection="shop",decision="allow"\} 3$`,
		`(?m)^gatehouse_statements_total\{connection="shop",decision="deny"\} 2$`,
	} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("metrics lack %s; have:\n%s", want, regexp.MustCompile(`(?m)^gatehouse_statements_total.*$`).FindAll(body, -1))
		}
	}
	if regexp.MustCompile(`decision="review"`).Match(body) {
		t.Error("metrics count a review no statement got")
	}
}

func TestPgbenchThroughGateway(t *testing.T) {
	h := newHarness(t)
	// Initialise directly (pgbench -i drops and creates tables, which the
	// reference policy forbids agents); then run through the gateway.
	init := exec.Command("pgbench", "-i", "-s", "1", "-q", h.pg.DSN(h.db))
	init.Env = cleanEnv()
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	h.pg.ExecIn(t, h.db, "GRANT SELECT, UPDATE, INSERT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO shop_writer")
	for _, mode := range []string{"simple", "extended", "prepared"} {
		cmd := exec.Command("pgbench", "-n", "-M", mode, "-c", "4", "-j", "2", "-t", "200",
			fmt.Sprintf("host=127.0.0.1 port=%s dbname=shop user=writer sslmode=require", h.port()))
		cmd.Env = append(cleanEnv(), "PGPASSWORD="+agentToken)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench -M %s: %v\n%s", mode, err, out)
		}
		if !strings.Contains(string(out), "number of transactions actually processed: 800/800") {
			t.Errorf("pgbench -M %s:\n%s", mode, out)
		}
	}
	h.stop()
	checkFilteredQueries(t, h.cfg.Store.Path)
	// With -M simple and -M extended every statement is a statement event
	// (800 transactions each); -M prepared audits each connection's Parse
	// of each statement (4 connections), and its executions as outcomes.
	// pgbench also counts pgbench_branches once per run, to learn the
	// scale.
	checkPgbenchStatements(t, h.cfg.Store.Path, map[string]int{
		"pgbench_accounts": 2*2*800 + 2*4,
		"pgbench_tellers":  2*800 + 4,
		"pgbench_branches": 2*800 + 4 + 3,
		"pgbench_history":  2*800 + 4,
	})
}

// checkPgbenchStatements checks how many statement events in the audit log
// at path name each of pgbench's tables. With -M simple every statement's
// text differs from the last in its constants, and most are analysed from
// a template (a signed delta among them): an analysis served for the
// wrong statement would move the counts.
func checkPgbenchStatements(t *testing.T, path string, want map[string]int) {
	t.Helper()
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Events(context.Background(), store.Query{Kind: string(audit.KindStatement), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range recs {
		for _, name := range r.Tables {
			got[name]++
		}
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("statement events with table %s: %d, want %d (all: %v)", name, got[name], n, got)
		}
	}
}

// checkFilteredQueries opens the audit log at path and checks that session,
// principal and table filters (which the embedded store answers through
// its block tables) return what filtering every event gives, for every
// session, principal and table in it.
func checkFilteredQueries(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, err := st.Events(ctx, store.Query{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	var queries []store.Query
	seen := map[store.Query]bool{}
	for _, r := range all {
		for _, q := range []store.Query{{SessionID: r.SessionID}, {Principal: r.Principal}} {
			if q != (store.Query{}) && !seen[q] {
				seen[q] = true
				queries = append(queries, q)
			}
		}
		for _, name := range r.Tables {
			for _, q := range []store.Query{{Table: name}, {Table: name, SessionID: r.SessionID}} {
				if !seen[q] {
					seen[q] = true
					queries = append(queries, q)
				}
			}
		}
	}
	if len(all) < 2048 || len(queries) < 10 {
		t.Fatalf("%d events and %d queries: too few to span blocks", len(all), len(queries))
	}
	for _, q := range queries {
		var want []int64
		for _, r := range all {
			if (q.SessionID == "" || r.SessionID == q.SessionID) && (q.Principal == "" || r.Principal == q.Principal) &&
				(q.Table == "" || slices.Contains(r.Tables, q.Table)) {
				want = append(want, r.Index)
			}
		}
		q.Limit = -1
		recs, err := st.Events(ctx, q)
		if err != nil {
			t.Fatalf("Events(%+v): %v", q, err)
		}
		got := make([]int64, 0, len(recs))
		for _, r := range recs {
			got = append(got, r.Index)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Events(%+v): %d events, want %d", q, len(got), len(want))
		}
	}
}

// TestProtocol32AndCancel: a protocol 3.2 client gets a 32-byte cancel key
// from Gatehouse (the target speaks 3.0) and its CancelRequest still works.
func TestProtocol32AndCancel(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, h.connString("reader", agentToken, "require")+" min_protocol_version=3.2 max_protocol_version=3.2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if n := len(c.PgConn().SecretKey()); n != 32 {
		t.Errorf("protocol 3.2 cancel key is %d bytes, want 32", n)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.PgConn().Exec(context.Background(), "select pg_sleep(30)").ReadAll()
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := c.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if pgCode(err) != "57014" {
			t.Errorf("cancelled query: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("3.2 CancelRequest had no effect")
	}
}

// TestMD5Target: a target that asks for md5 authentication gets it.
func TestMD5Target(t *testing.T) {
	pgc := sharedPG(t)
	pgc.CreateRole(t, "legacy_reader", "legacy-pw-5f2a", pgtest.MD5())
	h := newHarness(t, withCfg(func(c *config.Config) {
		c.Connections[0].Roles[0].User = "legacy_reader"
		c.Connections[0].Roles[0].Password = config.NewSecret("legacy-pw-5f2a")
	}))
	pgc.ExecIn(t, h.db, "GRANT SELECT ON orders TO legacy_reader")
	out, stderr, err := h.psql("reader", agentToken, "-c", "select current_user")
	if err != nil || strings.TrimSpace(out) != "legacy_reader" {
		t.Fatalf("md5 target: %q %v %s", out, err, stderr)
	}
}

// TestNoGoroutineOutlivesSessions: after many sessions of every kind end,
// the gateway is back to its idle goroutine count.
func TestNoGoroutineOutlivesSessions(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 10; i++ {
		c := h.mustConnect("reader", agentToken)
		_, _ = c.Exec(ctx, "select 1")
		_, _ = c.Exec(ctx, "drop table payments")
		c.Close(ctx)
		_, _ = h.connect("reader", "bad-token")
	}
	waitFor(t, func() bool { return h.gw.ActiveSessions() == 0 }, "sessions to end")
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the sessions ended, %d before\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
