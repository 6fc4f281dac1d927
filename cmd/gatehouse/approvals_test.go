package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/api"
	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/store"
)

// approvalsSite is a gateway's approvals API over a real SQLite-backed
// broker with static tokens.
type approvalsSite struct {
	srv    *httptest.Server
	broker *approval.Broker
}

func newApprovalsSite(t *testing.T) *approvalsSite {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := approval.NewBroker(st, nil, nil, nil, nil, approval.Options{ReplicaID: "cli-test", ApproverGroups: []string{"security"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	v, err := identity.New(context.Background(), identity.Config{Static: []identity.StaticIdentity{
		{Name: "ci-agent", Token: "cli-agent-token", Groups: []string{"agents"}},
		{Name: "approver", Token: "cli-approver-token", Groups: []string{"security"}},
		{Name: "approver2", Token: "cli-approver2-token", Groups: []string{"security"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.ApprovalRoutes(mux, b, v, []string{"security"})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &approvalsSite{srv: srv, broker: b}
}

func (s *approvalsSite) request(t *testing.T, statement string, required int) *approval.Request {
	t.Helper()
	r, err := s.broker.Request(context.Background(), approval.Request{
		Principal:  identity.Principal{Issuer: identity.StaticIssuer, Subject: "ci-agent", Name: "ci-agent", Groups: []string{"agents"}},
		Connection: "shop", Role: "writer", SessionID: "sess-9", Statement: statement,
		Rule: "review-payments-update", Reviewers: []string{"security"}, Required: required,
		Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// approvalsRun runs gatehouse with args and the environment vars.
func approvalsRun(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv:    func(k string) string { return vars[k] },
		lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
	}
	code = run(context.Background(), env, args)
	return out.String(), errb.String(), code
}

func TestApprovalsCommand(t *testing.T) {
	s := newApprovalsSite(t)
	first := s.request(t, "UPDATE payments SET amount = 0 WHERE id = 1", 1)
	second := s.request(t, "GRANT ALL ON payments TO intern\n-- line two \x1b[2J", 2)
	approver := map[string]string{"GATEHOUSE_SERVER": s.srv.URL, "GATEHOUSE_TOKEN": "cli-approver-token"}

	// list --json: the contract's fields, newest first.
	out, errs, code := approvalsRun(t, approver, "approvals", "list", "--json")
	if code != 0 {
		t.Fatalf("list --json: exit %d: %s", code, errs)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json is not a JSON array: %v\n%s", err, out)
	}
	if len(list) != 2 || list[0]["id"] != second.ID || list[1]["id"] != first.ID {
		t.Fatalf("list --json = %s", out)
	}
	for _, k := range []string{"id", "status", "principal", "connection", "statement"} {
		if _, ok := list[1][k]; !ok {
			t.Errorf("list --json lacks %q", k)
		}
	}
	if list[1]["status"] != "pending" || list[1]["principal"] != "ci-agent" || list[1]["connection"] != "shop" ||
		list[1]["statement"] != first.Statement {
		t.Fatalf("list --json entry = %v", list[1])
	}

	// list as a table: aligned, one line per request, no raw escapes.
	out, errs, code = approvalsRun(t, approver, "approvals", "list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[2], first.ID) ||
		!strings.Contains(lines[1], "pending 0/2") {
		t.Fatalf("list table:\n%s", out)
	}
	if col := strings.Index(lines[0], "STATUS"); col < 0 || lines[1][col:col+7] != "pending" || lines[2][col:col+7] != "pending" {
		t.Fatalf("list table is not aligned:\n%s", out)
	}
	if strings.Contains(out, "\x1b") {
		t.Fatalf("list printed a terminal escape from a statement: %q", out)
	}

	// show: every field; flags may follow the ID.
	out, errs, code = approvalsRun(t, nil, "approvals", "show", second.ID, "--server", s.srv.URL, "--token", "cli-approver-token")
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"id:          " + second.ID, "status:      pending", "kind:        statement", "principal:   ci-agent (issuer static; subject ci-agent; groups agents)",
		"connection:  shop", "role:        writer", "session:     sess-9", "rule:        review-payments-update",
		"reviewers:   security", "approvals:   0 of 2 needed", "created:", "expires:", "holder:      cli-test",
		"statement:\n  GRANT ALL ON payments TO intern\n  -- line two \\x1b[2J\n", "approve:     gatehouse approvals approve " + second.ID,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	// approve: N of M, then approved.
	out, errs, code = approvalsRun(t, approver, "approvals", "approve", second.ID, "--reason", "ticket SEC-1")
	if code != 0 || out != second.ID+": pending (1 of 2 approvals)\n" {
		t.Fatalf("first approve: exit %d: %q %s", code, out, errs)
	}
	out, errs, code = approvalsRun(t, map[string]string{"GATEHOUSE_SERVER": s.srv.URL, "GATEHOUSE_TOKEN": "cli-approver2-token"},
		"approvals", "approve", second.ID)
	if code != 0 || out != second.ID+": approved\n" {
		t.Fatalf("second approve: exit %d: %q %s", code, out, errs)
	}
	out, _, _ = approvalsRun(t, approver, "approvals", "show", second.ID)
	if !strings.Contains(out, "status:      approved") || !strings.Contains(out, "approved by approver (security) at") ||
		!strings.Contains(out, ": ticket SEC-1") || !strings.Contains(out, "decided:     approved by approver2") {
		t.Fatalf("show after approval:\n%s", out)
	}

	// deny: the reason is required, and the result is printed.
	if _, errs, code := approvalsRun(t, approver, "approvals", "deny", first.ID); code != 2 || !strings.Contains(errs, "--reason is required") {
		t.Fatalf("deny without --reason: exit %d: %s", code, errs)
	}
	out, errs, code = approvalsRun(t, approver, "approvals", "deny", first.ID, "--reason", "not during the freeze")
	if code != 0 || out != first.ID+": denied\n" {
		t.Fatalf("deny: exit %d: %q %s", code, out, errs)
	}
	if got, _ := s.broker.Get(context.Background(), first.ID); got.Status != approval.Denied || got.Reason() != "not during the freeze" {
		t.Fatalf("after deny: %+v", got)
	}

	// --status filters; --json on a decision prints the request.
	out, _, code = approvalsRun(t, approver, "approvals", "list", "--status", "denied", "--json")
	if code != 0 || !strings.Contains(out, first.ID) || strings.Contains(out, second.ID) {
		t.Fatalf("list --status denied: exit %d:\n%s", code, out)
	}
	out, _, code = approvalsRun(t, approver, "approvals", "list", "--status", "expired")
	if code != 0 || out != "no approval requests\n" {
		t.Fatalf("empty list: exit %d: %q", code, out)
	}
}

func TestApprovalsCommandErrors(t *testing.T) {
	s := newApprovalsSite(t)
	req := s.request(t, "UPDATE payments SET amount = 0", 1)
	agent := map[string]string{"GATEHOUSE_SERVER": s.srv.URL, "GATEHOUSE_TOKEN": "cli-agent-token"}
	approver := map[string]string{"GATEHOUSE_SERVER": s.srv.URL, "GATEHOUSE_TOKEN": "cli-approver-token"}
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		code int
		msg  string // in stderr
	}{
		{"no server", nil, []string{"approvals", "list"}, 2, "GATEHOUSE_SERVER"},
		{"no token", map[string]string{"GATEHOUSE_SERVER": s.srv.URL}, []string{"approvals", "list"}, 2, "GATEHOUSE_TOKEN"},
		{"no subcommand", approver, []string{"approvals"}, 2, "usage"},
		{"unknown subcommand", approver, []string{"approvals", "grant"}, 2, "unknown command"},
		{"missing id", approver, []string{"approvals", "show"}, 2, "want 1 request ID"},
		{"bad status", approver, []string{"approvals", "list", "--status", "maybe"}, 2, "not one of"},
		{"bad token", map[string]string{"GATEHOUSE_SERVER": s.srv.URL, "GATEHOUSE_TOKEN": "nope"}, []string{"approvals", "list"}, 1, "401 Unauthorized: invalid token"},
		{"agent lists", agent, []string{"approvals", "list"}, 1, "403 Forbidden: ci-agent may not list"},
		{"self approval", agent, []string{"approvals", "approve", req.ID}, 1, "nobody may approve or deny their own request"},
		{"unknown id", approver, []string{"approvals", "show", "nope"}, 1, "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := approvalsRun(t, tc.vars, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Fatalf("exit %d, stderr %q (stdout %q); want exit %d and %q", code, errs, out, tc.code, tc.msg)
			}
		})
	}
	if _, _, code := approvalsRun(t, approver, "approvals", "approve", req.ID); code != 0 {
		t.Fatal("approve failed")
	}
	if _, errs, code := approvalsRun(t, approver, "approvals", "deny", req.ID, "--reason", "x"); code != 1 || !strings.Contains(errs, "409 Conflict") || !strings.Contains(errs, "approved") {
		t.Fatalf("deciding twice: exit %d: %s", code, errs)
	}
}
