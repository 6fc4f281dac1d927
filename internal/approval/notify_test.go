package approval_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/webhook"
)

// receiver is a webhook endpoint that fails the first failures deliveries
// with 503 and records what it accepted.
type receiver struct {
	secret   []byte
	failures int

	mu       sync.Mutex
	attempts int
	bodies   [][]byte
	bad      []string // why deliveries were refused
	got      chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	if !webhook.Verify(rc.secret, body, r.Header.Get(webhook.SignatureHeader)) {
		rc.bad = append(rc.bad, "bad signature "+r.Header.Get(webhook.SignatureHeader))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rc.attempts <= rc.failures {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.bodies = append(rc.bodies, body)
	if rc.got != nil {
		close(rc.got)
		rc.got = nil
	}
}

func TestWebhook(t *testing.T) {
	ctx := context.Background()
	rc := &receiver{secret: []byte("s3cret"), failures: 2, got: make(chan struct{})}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	got := rc.got

	f := open(t, storetest.SQLiteDB(t))
	hook := &approval.Webhook{URL: srv.URL + "/hook", Secret: rc.secret, Backoff: 10 * time.Millisecond}
	b := f.broker(t, approval.Options{}, hook)
	req, err := b.Request(ctx, statement(agent))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("webhook not delivered")
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.attempts != 3 || len(rc.bad) != 0 {
		t.Fatalf("attempts = %d (want 3: two 503s, then success), refused: %v", rc.attempts, rc.bad)
	}
	var p approval.WebhookPayload
	if err := json.Unmarshal(rc.bodies[0], &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != "approval.requested" || p.Request.ID != req.ID || p.Request.Status != approval.Pending ||
		p.Request.Principal != "ci-agent" || p.Request.Connection != "shop" || p.Request.Statement != req.Statement ||
		p.ApproveCommand != "gatehouse approvals approve "+req.ID {
		t.Fatalf("payload = %+v", p)
	}
	// A forged or altered body does not verify.
	if webhook.Verify(rc.secret, append(rc.bodies[0], ' '), webhook.Sign(rc.secret, rc.bodies[0])) ||
		webhook.Verify([]byte("other"), rc.bodies[0], webhook.Sign(rc.secret, rc.bodies[0])) ||
		webhook.Verify(rc.secret, rc.bodies[0], "") {
		t.Fatal("webhook.Verify accepted a bad signature")
	}
}

func TestWebhookGivesUp(t *testing.T) {
	var (
		mu       sync.Mutex
		attempts int
		status   = http.StatusInternalServerError
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		w.WriteHeader(status)
	}))
	defer srv.Close()
	count := func(st int) int {
		mu.Lock()
		defer mu.Unlock()
		n := attempts
		attempts, status = 0, st
		return n
	}
	r := statement(agent)
	r.ID = "abc"
	hook := &approval.Webhook{URL: srv.URL + "/T000/B000/secretpath", Secret: []byte("k"), MaxAttempts: 3, Backoff: time.Millisecond}
	err := hook.Notify(context.Background(), &r)
	if n := count(http.StatusForbidden); err == nil || n != 3 {
		t.Fatalf("Notify = %v after %d attempts, want an error after 3", err, n)
	}
	// A 4xx other than 429 is final.
	err = hook.Notify(context.Background(), &r)
	if n := count(0); err == nil || n != 1 {
		t.Fatalf("Notify on 403 = %v after %d attempts, want 1", err, n)
	}
	// Unreachable: the error must not quote the URL, whose path is a
	// credential for Slack-style hooks.
	srv.Close()
	err = hook.Notify(context.Background(), &r)
	if err == nil || strings.Contains(err.Error(), "secretpath") {
		t.Fatalf("Notify to a closed server = %v", err)
	}
	if err := (&approval.Webhook{URL: srv.URL}).Notify(context.Background(), &r); err == nil {
		t.Fatal("a webhook without a secret delivered unsigned")
	}
}

func TestSlack(t *testing.T) {
	ctx := context.Background()
	texts := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		texts <- body.Text
	}))
	defer srv.Close()

	f := open(t, storetest.SQLiteDB(t))
	b := f.broker(t, approval.Options{}, &approval.Slack{URL: srv.URL + "/services/T0/B0/xyz"})
	r := statement(agent)
	r.Statement = "UPDATE payments SET note = '<!channel> ```' WHERE id = 1"
	req, err := b.Request(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	var text string
	select {
	case text = <-texts:
	case <-time.After(5 * time.Second):
		t.Fatal("slack not posted")
	}
	for _, want := range []string{
		"ci-agent", "connection *shop*", "role *writer*", "rule *review-payments-update*", "UPDATE payments SET note",
		"Reviewers: security", "`gatehouse approvals approve " + req.ID + "`", "gatehouse approvals deny " + req.ID,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("slack text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "<!channel>") {
		t.Errorf("a statement injected a mention:\n%s", text)
	}
	if strings.Count(text, "```") != 2 {
		t.Errorf("the statement broke out of its code block:\n%s", text)
	}
}

// TestNotifierDownKeepsRequest runs a real webhook against a closed port:
// the request is stored, decidable, and the log names the failure without
// the hook's URL.
func TestNotifierDownKeepsRequest(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hooks/very-secret-path"
	srv.Close()

	f := open(t, storetest.SQLiteDB(t))
	var logs logBuffer
	hook := &approval.Webhook{URL: url, Secret: []byte("k"), MaxAttempts: 2, Backoff: time.Millisecond}
	b, err := approval.NewBroker(f.st.(store.ApprovalStore), f.log, []approval.Notifier{hook}, nil,
		slog.New(slog.NewTextHandler(&logs, nil)), approval.Options{ReplicaID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(ctx)
	req, err := b.Request(ctx, statement(agent))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "notification failed") {
		if time.Now().After(deadline) {
			t.Fatalf("failure not logged: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "very-secret-path") {
		t.Fatalf("the log quotes the webhook URL: %s", logs.String())
	}
	if got, err := b.Decide(ctx, req.ID, alice, true, ""); err != nil || got.Status != approval.Approved {
		t.Fatalf("Decide after a failed notification = %+v, %v", got, err)
	}
}
