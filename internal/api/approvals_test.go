package api_test

import (
	"context"
	"encoding/json"
	"io"
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

// Static identities of the approvals API tests.
var aprIdentities = []identity.StaticIdentity{
	{Name: "ci-agent", Token: "apr-agent-token", Groups: []string{"agents"}},
	{Name: "approver", Token: "apr-approver-token", Groups: []string{"security"}},
	{Name: "approver2", Token: "apr-approver2-token", Groups: []string{"security"}},
	// dba reviews some rules' requests but is not an approver.
	{Name: "dba", Token: "apr-dba-token", Groups: []string{"dba"}},
	// sec-agent is an agent that is also an approver.
	{Name: "sec-agent", Token: "apr-sec-agent-token", Groups: []string{"agents", "security"}},
}

type aprFixture struct {
	srv    *httptest.Server
	broker *approval.Broker
}

func newAprFixture(t *testing.T) *aprFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := approval.NewBroker(st, nil, nil, nil, nil, approval.Options{ReplicaID: "api-test", ApproverGroups: []string{"security"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	v, err := identity.New(ctx, identity.Config{Static: aprIdentities}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.ApprovalRoutes(mux, b, v, []string{"security"})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &aprFixture{srv: srv, broker: b}
}

func (f *aprFixture) request(t *testing.T, requester string, reviewers ...string) *approval.Request {
	t.Helper()
	var p identity.Principal
	for _, s := range aprIdentities {
		if s.Name == requester {
			p = identity.Principal{Issuer: identity.StaticIssuer, Subject: s.Name, Name: s.Name, Groups: s.Groups}
		}
	}
	r, err := f.broker.Request(context.Background(), approval.Request{
		Principal: p, Connection: "shop", Role: "writer", Statement: "UPDATE payments SET amount = 0",
		Rule: "review-payments-update", Reviewers: reviewers, Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// call sends method path with token and body, and returns the status and
// the body's JSON decoded into out (or the error message).
func (f *aprFixture) call(t *testing.T, method, path, token, body string, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
			t.Fatalf("%s %s: %s with a body that is not an error: %s", method, path, resp.Status, data)
		}
		return resp.StatusCode, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, ""
}

func TestApprovalsAPIAuth(t *testing.T) {
	f := newAprFixture(t)
	req := f.request(t, "ci-agent", "security")
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", "GET", "/api/v1/approvals", "", "", 401},
		{"bad token", "GET", "/api/v1/approvals", "nope", "", 401},
		{"agent lists", "GET", "/api/v1/approvals", "apr-agent-token", "", 403},
		{"reviewer of nothing lists", "GET", "/api/v1/approvals", "apr-dba-token", "", 403},
		{"agent reads", "GET", "/api/v1/approvals/" + req.ID, "apr-agent-token", "", 403},
		{"non-reviewer reads", "GET", "/api/v1/approvals/" + req.ID, "apr-dba-token", "", 403},
		{"agent approves", "POST", "/api/v1/approvals/" + req.ID + "/approve", "apr-agent-token", "", 403},
		{"non-reviewer denies", "POST", "/api/v1/approvals/" + req.ID + "/deny", "apr-dba-token", `{"reason":"x"}`, 403},
		{"unknown id", "GET", "/api/v1/approvals/nope", "apr-approver-token", "", 404},
		{"decide unknown id", "POST", "/api/v1/approvals/nope/approve", "apr-approver-token", "", 404},
		{"bad status", "GET", "/api/v1/approvals?status=maybe", "apr-approver-token", "", 400},
		{"bad limit", "GET", "/api/v1/approvals?limit=x", "apr-approver-token", "", 400},
		{"deny without reason", "POST", "/api/v1/approvals/" + req.ID + "/deny", "apr-approver-token", `{}`, 400},
		{"deny with blank reason", "POST", "/api/v1/approvals/" + req.ID + "/deny", "apr-approver-token", `{"reason":"  "}`, 400},
		{"bad body", "POST", "/api/v1/approvals/" + req.ID + "/approve", "apr-approver-token", `{"reason":`, 400},
		{"unknown field", "POST", "/api/v1/approvals/" + req.ID + "/approve", "apr-approver-token", `{"why":"x"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, msg := f.call(t, tc.method, tc.path, tc.token, tc.body, nil); got != tc.want {
				t.Fatalf("status %d (%s), want %d", got, msg, tc.want)
			}
		})
	}
	if got, _ := f.broker.Get(context.Background(), req.ID); got.Status != approval.Pending {
		t.Fatalf("refused calls changed the request: %s", got.Status)
	}
}

func TestApprovalsAPIFlow(t *testing.T) {
	f := newAprFixture(t)
	first := f.request(t, "ci-agent", "security")
	second := f.request(t, "ci-agent", "security")

	var list []approval.View
	if code, msg := f.call(t, "GET", "/api/v1/approvals", "apr-approver-token", "", &list); code != 200 {
		t.Fatalf("list: %d %s", code, msg)
	}
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID || list[0].Status != "pending" ||
		list[0].Principal != "ci-agent" || list[0].Connection != "shop" || list[0].Statement != "UPDATE payments SET amount = 0" {
		t.Fatalf("list = %+v", list)
	}

	var v approval.View
	if code, msg := f.call(t, "GET", "/api/v1/approvals/"+first.ID, "apr-approver-token", "", &v); code != 200 || v.ID != first.ID {
		t.Fatalf("get: %d %s %+v", code, msg, v)
	}
	if code, msg := f.call(t, "POST", "/api/v1/approvals/"+first.ID+"/approve", "apr-approver-token", `{"reason":"ok for the migration"}`, &v); code != 200 {
		t.Fatalf("approve: %d %s", code, msg)
	}
	if v.Status != "approved" || v.Decided == nil || v.Decided.By != "approver" || v.Decided.Reason != "ok for the migration" {
		t.Fatalf("approve = %+v", v)
	}
	if code, msg := f.call(t, "POST", "/api/v1/approvals/"+second.ID+"/deny", "apr-approver-token", `{"reason":"not in the freeze"}`, &v); code != 200 || v.Status != "denied" {
		t.Fatalf("deny: %d %s %+v", code, msg, v)
	}
	code, msg := f.call(t, "POST", "/api/v1/approvals/"+second.ID+"/approve", "apr-approver2-token", "", nil)
	if code != 409 || !strings.Contains(msg, "denied") {
		t.Fatalf("approving a denied request: %d %s", code, msg)
	}

	if code, msg := f.call(t, "GET", "/api/v1/approvals?status=approved", "apr-approver-token", "", &list); code != 200 || len(list) != 1 || list[0].ID != first.ID {
		t.Fatalf("list approved: %d %s %+v", code, msg, list)
	}
	// An approval needs no body at all.
	third := f.request(t, "ci-agent", "security")
	if code, msg := f.call(t, "POST", "/api/v1/approvals/"+third.ID+"/approve", "apr-approver2-token", "", &v); code != 200 || v.Status != "approved" {
		t.Fatalf("approve without a body: %d %s %+v", code, msg, v)
	}
}

func TestApprovalsAPISelfApproval(t *testing.T) {
	f := newAprFixture(t)
	req := f.request(t, "sec-agent", "security")
	// sec-agent may read its request (it is an approver) but not decide it.
	if code, msg := f.call(t, "GET", "/api/v1/approvals/"+req.ID, "apr-sec-agent-token", "", nil); code != 200 {
		t.Fatalf("get: %d %s", code, msg)
	}
	for _, path := range []string{"/approve", "/deny"} {
		code, msg := f.call(t, "POST", "/api/v1/approvals/"+req.ID+path, "apr-sec-agent-token", `{"reason":"mine"}`, nil)
		if code != 403 || !strings.Contains(msg, "your own") {
			t.Fatalf("self %s: %d %q", path, code, msg)
		}
	}
}

// TestApprovalsAPIReviewerOnly: a member of the request's reviewer groups
// who is not an approver may read and decide it, but not list.
func TestApprovalsAPIReviewerOnly(t *testing.T) {
	f := newAprFixture(t)
	req := f.request(t, "ci-agent", "dba")
	var v approval.View
	if code, msg := f.call(t, "GET", "/api/v1/approvals/"+req.ID, "apr-dba-token", "", &v); code != 200 || v.Reviewers[0] != "dba" {
		t.Fatalf("get: %d %s", code, msg)
	}
	if code, _ := f.call(t, "GET", "/api/v1/approvals", "apr-dba-token", "", nil); code != 403 {
		t.Fatalf("list by a reviewer who is not an approver: %d", code)
	}
	if code, msg := f.call(t, "POST", "/api/v1/approvals/"+req.ID+"/approve", "apr-dba-token", "", &v); code != 200 || v.Status != "approved" {
		t.Fatalf("approve: %d %s %+v", code, msg, v)
	}
}
