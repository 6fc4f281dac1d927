package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type approvalView struct {
	ID, Status, Statement, Connection, Rule string
}

// api calls the gateway's REST API with token.
func (h *harness) api(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+h.gw.APIAddr().String()+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// pending waits for one pending approval request and returns it.
func (h *harness) pending(t *testing.T) approvalView {
	t.Helper()
	var got approvalView
	waitFor(t, func() bool {
		code, b := h.api(t, "GET", "/api/v1/approvals?status=pending", approverToken, nil)
		if code != 200 {
			t.Fatalf("list approvals: %d %s", code, b)
		}
		var list []approvalView
		_ = json.Unmarshal(b, &list)
		if len(list) == 1 {
			got = list[0]
			return true
		}
		return false
	}, "a pending approval request")
	return got
}

// heldExec runs sql on c in the background and returns its outcome later.
func heldExec(c *pgx.Conn, sql string, args ...any) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := c.Exec(context.Background(), sql, args...)
		ch <- err
	}()
	return ch
}

func TestApprovalApproveRunsTheHeldStatement(t *testing.T) {
	h := newHarness(t)
	var notices []string
	var mu sync.Mutex
	cfg, _ := pgx.ParseConfig(h.connString("writer", agentToken, "require"))
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Message+" | "+n.Detail)
		mu.Unlock()
	}
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	// The extended protocol with parameters: the approval covers them.
	done := heldExec(c, "update payments set amount = $1 where id = $2", 7.5, 1)
	req := h.pending(t)
	if !strings.Contains(req.Statement, "update payments") || req.Rule != "review-payments-update" {
		t.Errorf("request: %+v", req)
	}
	// The requester may not approve their own statement; an auditor is no reviewer.
	if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/approve", agentToken, map[string]string{}); code != 403 {
		t.Errorf("self-approval: %d %s", code, b)
	}
	if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/approve", auditorToken, map[string]string{}); code != 403 {
		t.Errorf("non-reviewer approval: %d %s", code, b)
	}
	select {
	case err := <-done:
		t.Fatalf("the held statement finished before approval: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if got := h.scalar("select amount::text from payments where id = 1"); got != "42.00" {
		t.Fatalf("held statement reached the target: amount %s", got)
	}
	if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/approve", approverToken, map[string]string{"reason": "ticket 42"}); code != 200 {
		t.Fatalf("approve: %d %s", code, b)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("approved statement: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("approved statement did not run")
	}
	if got := h.scalar("select amount::text from payments where id = 1"); got != "7.50" {
		t.Errorf("amount after approval = %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notices) == 0 || !strings.Contains(notices[0], req.ID) || !strings.Contains(notices[0], "gatehouse approvals approve") {
		t.Errorf("client notices: %q", notices)
	}
}

func TestApprovalDenyInTransaction(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.mustConnect("writer", agentToken)
	if _, err := c.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "insert into orders (id, note) values (801, 'tx')"); err != nil {
		t.Fatal(err)
	}
	done := heldExec(c, "update payments set amount = 0 where id = 2")
	req := h.pending(t)
	if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/deny", approverToken, map[string]string{"reason": "not during the freeze"}); code != 200 {
		t.Fatalf("deny: %d %s", code, b)
	}
	err := <-done
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "not during the freeze") {
		t.Fatalf("denied statement: %v", err)
	}
	// The transaction is aborted exactly as after any error.
	if _, err := c.Exec(ctx, "select 1"); pgCode(err) != "25P02" {
		t.Errorf("after denial in a transaction: %v", err)
	}
	c.Exec(ctx, "rollback")
	if got := h.scalar("select amount::text from payments where id = 2"); got != "17.50" {
		t.Errorf("denied update changed the row: %s", got)
	}
}

func TestApprovalInTransactionApprovedIsJustSlow(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.mustConnect("writer", agentToken)
	c.Exec(ctx, "begin")
	c.Exec(ctx, "insert into orders (id, note) values (802, 'tx')")
	done := heldExec(c, "update payments set amount = 1 where id = 3")
	req := h.pending(t)
	if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/approve", approverToken, map[string]string{}); code != 200 {
		t.Fatalf("approve: %d %s", code, b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	if got := h.scalar("select (select amount from payments where id = 3)::text || '/' || (select count(*) from orders where id = 802)::text"); got != "1.00/1" {
		t.Errorf("after commit: %s", got)
	}
}

func TestApprovalExpiresAndCancelWithdraws(t *testing.T) {
	h := newHarness(t, withCfg(func(c *config.Config) { c.Approvals.Timeout = 1500 * time.Millisecond }))
	c := h.mustConnect("writer", agentToken)
	err := <-heldExec(c, "update payments set amount = 0 where id = 4")
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired request: %v", err)
	}
	// Cancel while held: the request is withdrawn and the client gets 57014.
	c2 := h.mustConnect("writer", agentToken)
	done := heldExec(c2, "update payments set amount = 0 where id = 4")
	req := h.pending(t)
	if err := c2.PgConn().CancelRequest(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; pgCode(err) != "57014" {
		t.Fatalf("cancelled held statement: %v", err)
	}
	code, b := h.api(t, "GET", "/api/v1/approvals/"+req.ID, approverToken, nil)
	if code != 200 || !strings.Contains(string(b), `"withdrawn"`) {
		t.Errorf("after cancel: %d %s", code, b)
	}
	if got := h.scalar("select amount::text from payments where id = 4"); got != "12.00" {
		t.Errorf("row changed: %s", got)
	}
}

func TestApprovalDisconnectWithdrawsAndWebhookIsSigned(t *testing.T) {
	secret := "webhook-secret-1"
	got := make(chan bool, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(b)
		got <- r.Header.Get("X-Gatehouse-Signature") == "sha256="+hex.EncodeToString(m.Sum(nil)) && bytes.Contains(b, []byte("update payments"))
	}))
	defer srv.Close()
	h := newHarness(t, withCfg(func(c *config.Config) {
		c.Approvals.Notify.Webhook = &config.ApprovalWebhook{URL: srv.URL, Secret: config.NewSecret(secret)}
	}))
	c := h.mustConnect("writer", agentToken)
	heldExec(c, "update payments set amount = 0 where id = 1")
	req := h.pending(t)
	select {
	case ok := <-got:
		if !ok {
			t.Error("webhook body not signed with the configured secret")
		}
	case <-time.After(10 * time.Second):
		t.Error("no webhook notification")
	}
	c.PgConn().Conn().Close() // the agent goes away
	waitFor(t, func() bool {
		_, b := h.api(t, "GET", "/api/v1/approvals/"+req.ID, approverToken, nil)
		return strings.Contains(string(b), `"withdrawn"`)
	}, "the request to be withdrawn after the client left")
}

// TestApprovalAcrossReplicas: two gateways share one PostgreSQL store; a
// statement held on one is released by an approval made through the other.
func TestApprovalAcrossReplicas(t *testing.T) {
	pgc := sharedPG(t)
	storeDB := pgc.NewDatabase(t)
	usePG := withPostgresStore(pgc, storeDB)
	a := newHarness(t, usePG)
	b := newHarness(t, usePG, withCfg(func(c *config.Config) { c.Audit.SigningKeyFile = a.cfg.DataDir + "/audit.key" }))
	c := a.mustConnect("writer", agentToken)
	done := heldExec(c, "update payments set amount = 5 where id = 2")
	req := b.pending(t)
	if code, body := b.api(t, "POST", "/api/v1/approvals/"+req.ID+"/approve", approverToken, map[string]string{}); code != 200 {
		t.Fatalf("approve on replica b: %d %s", code, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("approval on another replica did not release the statement")
	}
	if got := a.scalar("select amount::text from payments where id = 2"); got != "5.00" {
		t.Errorf("amount %s", got)
	}
}

// TestSessionGrant: a review rule matching at connect time holds the
// session until approved; the grant then lasts the rule's duration.
func TestSessionGrant(t *testing.T) {
	h := newHarness(t, withCfg(func(c *config.Config) {
		c.Policy.Rules = append(c.Policy.Rules, config.Rule{
			Name: "review-writer-sessions", When: `stmt.command == "" && role == "writer"`,
			Action: "review", Reviewers: []string{"security"}, Approvals: 1, Grant: 2 * time.Second,
		})
	}))
	type res struct {
		c   *pgx.Conn
		err error
	}
	connect := func() <-chan res {
		ch := make(chan res, 1)
		go func() {
			c, err := h.connect("writer", agentToken)
			ch <- res{c, err}
		}()
		return ch
	}
	// Readers are not held.
	h.mustConnect("reader", agentToken)

	pending := connect()
	req := h.pending(t)
	if !strings.Contains(req.Statement, "session as writer") {
		t.Errorf("session request: %+v", req)
	}
	if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/approve", approverToken, map[string]string{}); code != 200 {
		t.Fatalf("approve: %d %s", code, b)
	}
	r := <-pending
	if r.err != nil {
		t.Fatalf("approved session: %v", r.err)
	}
	defer r.c.Close(context.Background())
	var user string
	if err := r.c.QueryRow(context.Background(), "select current_user").Scan(&user); err != nil || user != "shop_writer" {
		t.Fatalf("in the granted session: %q %v", user, err)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := r.c.Exec(context.Background(), "select 1"); err == nil {
		t.Error("the session outlived its grant")
	}

	// Denied: the connection attempt fails with the reviewer's reason.
	pending = connect()
	req = h.pending(t)
	if code, b := h.api(t, "POST", "/api/v1/approvals/"+req.ID+"/deny", approverToken, map[string]string{"reason": "use the reader role"}); code != 200 {
		t.Fatalf("deny: %d %s", code, b)
	}
	r = <-pending
	if r.err == nil || pgCode(r.err) != "28000" || !strings.Contains(r.err.Error(), "use the reader role") {
		t.Fatalf("denied session: %v", r.err)
	}
}
