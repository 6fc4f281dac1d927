package approval_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var (
	agent   = &identity.Principal{Issuer: "static", Subject: "ci-agent", Name: "ci-agent", Groups: []string{"agents"}}
	alice   = &identity.Principal{Issuer: "static", Subject: "alice", Name: "alice", Groups: []string{"security"}}
	bob     = &identity.Principal{Issuer: "static", Subject: "bob", Name: "bob", Groups: []string{"security"}}
	mallory = &identity.Principal{Issuer: "static", Subject: "mallory", Name: "mallory", Groups: []string{"agents"}}
	// root is in no reviewer group but in the broker's approver groups.
	root = &identity.Principal{Issuer: "https://issuer.example", Subject: "42", Name: "root", Groups: []string{"admins"}}
)

// fixture is one gateway's view of a store: a handle, its audit log, and
// brokers made on it.
type fixture struct {
	st  store.Store
	log *audit.Log
}

// open opens a handle on db with its own audit log, closed when t ends
// (after any broker made later, since cleanups run last-in first-out).
func open(t *testing.T, db storetest.DB) *fixture {
	t.Helper()
	st, err := db.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skey, _, err := note.GenerateKey(rand.Reader, "gatehouse.test/approval")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), st, signer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	return &fixture{st: st, log: l}
}

func (f *fixture) broker(t *testing.T, opts approval.Options, notifiers ...approval.Notifier) *approval.Broker {
	t.Helper()
	if opts.ReplicaID == "" {
		opts.ReplicaID = "replica-" + t.Name()
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	b, err := approval.NewBroker(f.st.(store.ApprovalStore), f.log, notifiers, nil, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return b
}

// events returns the audit events of kind for approval id.
func (f *fixture) events(t *testing.T, kind audit.Kind, id string) []audit.Event {
	t.Helper()
	recs, err := f.st.Events(context.Background(), store.Query{Kind: string(kind), Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, r := range recs {
		ev, err := audit.ParseEvent(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Extra["approval_id"] == id {
			out = append(out, ev)
		}
	}
	return out
}

// eventsEventually is events once there are some, for events recorded after
// the change a test waits for.
func (f *fixture) eventsEventually(t *testing.T, kind audit.Kind, id string) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := f.events(t, kind, id)
		if len(evs) > 0 || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statement(p *identity.Principal) approval.Request {
	return approval.Request{
		Principal: *p, Connection: "shop", Role: "writer", SessionID: "sess-1",
		Statement: "UPDATE payments SET amount = $1 WHERE pan = '411111******1111'",
		ParamHash: approval.Bind([]byte("k"), "UPDATE payments SET amount = $1 WHERE pan = '4111111111111111'", [][]byte{[]byte("0")}),
		Rule:      "review-payments-update", Reviewers: []string{"security"},
	}
}

// waitAsync runs Wait in the background; the result arrives on the channel.
func waitAsync(ctx context.Context, b *approval.Broker, id string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		r, err := b.Wait(ctx, id)
		ch <- result{r, err}
	}()
	return ch
}

type result struct {
	r   *approval.Request
	err error
}

func recv(t *testing.T, ch <-chan result, within time.Duration) result {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(within):
		t.Fatalf("Wait did not return within %s", within)
		return result{}
	}
}

// notDone checks that a Wait is still waiting.
func notDone(t *testing.T, ch <-chan result) {
	t.Helper()
	select {
	case res := <-ch:
		t.Fatalf("Wait returned early: %+v, %v", res.r, res.err)
	case <-time.After(100 * time.Millisecond):
	}
}

func forEachBackend(t *testing.T, fn func(t *testing.T, db storetest.DB)) {
	forBackends(t, storetest.Backends, fn)
}

func forBackends(t *testing.T, backends []storetest.Backend, fn func(t *testing.T, db storetest.DB)) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) { fn(t, be.NewDB(t)) })
	}
}

func TestApproveReleasesWait(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db storetest.DB) {
		ctx := context.Background()
		f := open(t, db)
		b := f.broker(t, approval.Options{})
		req, err := b.Request(ctx, statement(agent))
		if err != nil {
			t.Fatal(err)
		}
		if req.ID == "" || req.Status != approval.Pending || req.Required != 1 || req.Kind != approval.KindStatement {
			t.Fatalf("new request = %+v", req)
		}
		if d := req.Expires.Sub(req.Created); d != 15*time.Minute {
			t.Fatalf("default timeout = %s, want 15m", d)
		}
		got, err := b.Get(ctx, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Statement != req.Statement || got.Principal.Name != "ci-agent" || got.Holder != b.ReplicaID() || got.ParamHash != req.ParamHash {
			t.Fatalf("Get = %+v", got)
		}
		if got.Principal.Claims != nil {
			t.Fatalf("claims were stored: %v", got.Principal.Claims)
		}
		list, err := b.List(ctx, approval.Filter{Status: approval.Pending})
		if err != nil || len(list) != 1 || list[0].ID != req.ID {
			t.Fatalf("List(pending) = %v, %v", list, err)
		}

		wait := waitAsync(ctx, b, req.ID)
		notDone(t, wait)
		dec, err := b.Decide(ctx, req.ID, alice, true, "looks right")
		if err != nil {
			t.Fatal(err)
		}
		if dec.Status != approval.Approved || dec.Decided == nil || dec.Decided.By != "alice" || dec.Decided.Reason != "looks right" {
			t.Fatalf("Decide = %+v", dec)
		}
		res := recv(t, wait, 5*time.Second)
		if res.err != nil || res.r.Status != approval.Approved || len(res.r.Approvals) != 1 {
			t.Fatalf("Wait = %+v, %v", res.r, res.err)
		}
		if _, err := b.Decide(ctx, req.ID, bob, false, "too late"); !errors.Is(err, approval.ErrNotPending) {
			t.Fatalf("deciding a decided request: %v, want ErrNotPending", err)
		}
		if _, err := b.Get(ctx, "nope"); !errors.Is(err, approval.ErrNotFound) {
			t.Fatalf("Get(unknown) = %v", err)
		}
		if _, err := b.Decide(ctx, "nope", alice, true, ""); !errors.Is(err, approval.ErrNotFound) {
			t.Fatalf("Decide(unknown) = %v", err)
		}

		reqd := f.events(t, audit.KindApprovalRequested, req.ID)
		if len(reqd) != 1 || reqd[0].Principal.Name != "ci-agent" || reqd[0].Statement != req.Statement ||
			reqd[0].Rule != "review-payments-update" || reqd[0].Decision != "review" {
			t.Fatalf("approval.requested events = %+v", reqd)
		}
		decd := f.events(t, audit.KindApprovalDecided, req.ID)
		if len(decd) != 1 || decd[0].Principal.Name != "alice" || decd[0].Decision != "approve" ||
			decd[0].Extra["status"] != "approved" || decd[0].Reason != "looks right" {
			t.Fatalf("approval.decided events = %+v", decd)
		}
	})
}

func TestWhoMayDecide(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	b := f.broker(t, approval.Options{ApproverGroups: []string{"admins"}})

	// An agent that is also in the reviewer group still cannot approve
	// its own statement, nor deny it.
	both := &identity.Principal{Issuer: "static", Subject: "dual", Name: "dual", Groups: []string{"agents", "security"}}
	req, err := b.Request(ctx, statement(both))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		by      *identity.Principal
		approve bool
		want    error
	}{
		{"self approve", both, true, approval.ErrSelfApproval},
		{"self deny", both, false, approval.ErrSelfApproval},
		{"same name other issuer", &identity.Principal{Issuer: "https://x", Subject: "9", Name: "Dual", Groups: []string{"security"}}, true, approval.ErrSelfApproval},
		{"same subject and issuer, other name", &identity.Principal{Issuer: "static", Subject: "dual", Name: "someone", Groups: []string{"security"}}, true, approval.ErrSelfApproval},
		{"not a reviewer", mallory, true, approval.ErrNotReviewer},
		{"nil principal", nil, true, approval.ErrNotReviewer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Decide(ctx, req.ID, tc.by, tc.approve, "because")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if got, _ := b.Get(ctx, req.ID); got.Status != approval.Pending || len(got.Approvals) != 0 {
		t.Fatalf("refused decisions changed the request: %+v", got)
	}
	if n := len(f.events(t, audit.KindApprovalDecided, req.ID)); n != 0 {
		t.Fatalf("%d approval.decided events for refused decisions", n)
	}
	// The broker's approver groups may decide any request.
	if !b.MayDecide(root, req) || b.MayDecide(mallory, req) {
		t.Fatal("MayDecide disagrees with the configuration")
	}
	if r, err := b.Decide(ctx, req.ID, root, true, ""); err != nil || r.Status != approval.Approved {
		t.Fatalf("approver group decision = %+v, %v", r, err)
	}
}

func TestNOfM(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	b := f.broker(t, approval.Options{})
	r := statement(agent)
	r.Required = 2
	req, err := b.Request(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	wait := waitAsync(ctx, b, req.ID)
	got, err := b.Decide(ctx, req.ID, alice, true, "")
	if err != nil || got.Status != approval.Pending || len(got.Approvals) != 1 {
		t.Fatalf("first approval = %+v, %v", got, err)
	}
	notDone(t, wait)
	if _, err := b.Decide(ctx, req.ID, alice, true, "again"); !errors.Is(err, approval.ErrAlreadyApproved) {
		t.Fatalf("second approval by alice: %v, want ErrAlreadyApproved", err)
	}
	// The same person under another name is still the same person.
	alias := &identity.Principal{Issuer: "static", Subject: "alice", Name: "alice2", Groups: []string{"security"}}
	if _, err := b.Decide(ctx, req.ID, alias, true, ""); !errors.Is(err, approval.ErrAlreadyApproved) {
		t.Fatalf("approval by alice's alias: %v, want ErrAlreadyApproved", err)
	}
	notDone(t, wait)
	got, err = b.Decide(ctx, req.ID, bob, true, "second pair of eyes")
	if err != nil || got.Status != approval.Approved || got.Decided.By != "bob" {
		t.Fatalf("second approval = %+v, %v", got, err)
	}
	res := recv(t, wait, 5*time.Second)
	if res.err != nil || res.r.Status != approval.Approved || len(res.r.Approvals) != 2 {
		t.Fatalf("Wait = %+v, %v", res.r, res.err)
	}
	evs := f.events(t, audit.KindApprovalDecided, req.ID)
	if len(evs) != 2 || evs[0].Extra["status"] != "pending" || evs[1].Extra["status"] != "approved" {
		t.Fatalf("decided events = %+v", evs)
	}

	// A denial ends an N-of-M request at once, approvals or not.
	req2, err := b.Request(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decide(ctx, req2.ID, alice, true, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Decide(ctx, req2.ID, bob, false, "no"); err != nil || got.Status != approval.Denied {
		t.Fatalf("deny after one approval = %+v, %v", got, err)
	}
}

// TestConcurrentApprovals has two replicas record the two approvals of a
// 2-of-M request at the same moment: neither may be lost.
func TestConcurrentApprovals(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLiteDB(t)
	f1, f2 := open(t, db), open(t, db)
	b1 := f1.broker(t, approval.Options{ReplicaID: "r1"})
	b2 := f2.broker(t, approval.Options{ReplicaID: "r2"})
	for i := range 5 {
		r := statement(agent)
		r.Required = 2
		req, err := b1.Request(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, d := range []struct {
			b  *approval.Broker
			by *identity.Principal
		}{{b1, alice}, {b2, bob}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = d.b.Decide(ctx, req.ID, d.by, true, "")
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v", i, errs)
		}
		got, err := b1.Get(ctx, req.ID)
		if err != nil || got.Status != approval.Approved || len(got.Approvals) != 2 {
			t.Fatalf("round %d: %+v, %v", i, got, err)
		}
	}
}

func TestDeny(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	b := f.broker(t, approval.Options{MaskReason: func(s string) string {
		return strings.ReplaceAll(s, "4111111111111111", "411111******1111")
	}})
	req, err := b.Request(ctx, statement(agent))
	if err != nil {
		t.Fatal(err)
	}
	wait := waitAsync(ctx, b, req.ID)
	if _, err := b.Decide(ctx, req.ID, alice, false, "   "); !errors.Is(err, approval.ErrReasonRequired) {
		t.Fatalf("deny without a reason: %v, want ErrReasonRequired", err)
	}
	got, err := b.Decide(ctx, req.ID, alice, false, "not during the freeze; card 4111111111111111")
	if err != nil || got.Status != approval.Denied {
		t.Fatalf("deny = %+v, %v", got, err)
	}
	res := recv(t, wait, 5*time.Second)
	want := "not during the freeze; card 411111******1111"
	if res.err != nil || res.r.Status != approval.Denied || res.r.Reason() != want {
		t.Fatalf("Wait = %+v (reason %q), %v", res.r, res.r.Reason(), res.err)
	}
	evs := f.events(t, audit.KindApprovalDecided, req.ID)
	if len(evs) != 1 || evs[0].Decision != "deny" || evs[0].Reason != want {
		t.Fatalf("decided events = %+v", evs)
	}
}

func TestExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db storetest.DB) {
		ctx := context.Background()
		f := open(t, db)
		b := f.broker(t, approval.Options{Timeout: 300 * time.Millisecond, SweepInterval: 100 * time.Millisecond})
		// Waited for: Wait expires it on time.
		req, err := b.Request(ctx, statement(agent))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res := recv(t, waitAsync(ctx, b, req.ID), 5*time.Second)
		if res.err != nil || res.r.Status != approval.Expired || res.r.Reason() != "expired" {
			t.Fatalf("Wait = %+v, %v", res.r, res.err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("expired after %s, before its time", d)
		}
		if _, err := b.Decide(ctx, req.ID, alice, true, ""); !errors.Is(err, approval.ErrNotPending) {
			t.Fatalf("approving an expired request: %v", err)
		}
		// Expiry is stored before it is recorded (a system transition): the
		// sweeper may still be recording it when the waiter sees it.
		evs := f.eventsEventually(t, audit.KindApprovalDecided, req.ID)
		if len(evs) != 1 || evs[0].Decision != "expired" {
			t.Fatalf("decided events = %+v", evs)
		}

		// Not waited for: the sweeper expires it.
		r := statement(agent)
		r.Expires = time.Now().Add(100 * time.Millisecond)
		req2, err := b.Request(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := b.Get(ctx, req2.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == approval.Expired {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not swept: %+v", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestDecideAfterExpiryBeforeSweep(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b, err := approval.NewBroker(f.st.(store.ApprovalStore), f.log, nil, clock, nil,
		approval.Options{ReplicaID: "r", SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(ctx)
	req, err := b.Request(ctx, statement(agent))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(16 * time.Minute)
	mu.Unlock()
	if _, err := b.Decide(ctx, req.ID, alice, true, ""); !errors.Is(err, approval.ErrNotPending) {
		t.Fatalf("approving past expiry: %v, want ErrNotPending", err)
	}
	if got, _ := b.Get(ctx, req.ID); got.Status != approval.Expired {
		t.Fatalf("status = %s, want expired", got.Status)
	}
}

func TestWithdraw(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	b := f.broker(t, approval.Options{})
	req, err := b.Request(ctx, statement(agent))
	if err != nil {
		t.Fatal(err)
	}
	// The client cancels: Wait returns the context's error and the
	// request stays pending until the caller withdraws it.
	wctx, cancel := context.WithCancel(ctx)
	wait := waitAsync(wctx, b, req.ID)
	notDone(t, wait)
	cancel()
	res := recv(t, wait, 5*time.Second)
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("Wait after cancel = %+v, %v", res.r, res.err)
	}
	other := waitAsync(ctx, b, req.ID) // e.g. a second session watching it
	if err := b.Withdraw(ctx, req.ID, "client cancelled the statement"); err != nil {
		t.Fatal(err)
	}
	res = recv(t, other, 5*time.Second)
	if res.err != nil || res.r.Status != approval.Withdrawn || res.r.Decided.By != "ci-agent" || res.r.Reason() != "client cancelled the statement" {
		t.Fatalf("Wait after withdraw = %+v, %v", res.r, res.err)
	}
	if err := b.Withdraw(ctx, req.ID, "again"); !errors.Is(err, approval.ErrNotPending) {
		t.Fatalf("second Withdraw = %v", err)
	}
	if _, err := b.Decide(ctx, req.ID, alice, true, ""); !errors.Is(err, approval.ErrNotPending) {
		t.Fatalf("approving a withdrawn request: %v", err)
	}
	if evs := f.events(t, audit.KindApprovalDecided, req.ID); len(evs) != 1 || evs[0].Decision != "withdrawn" {
		t.Fatalf("decided events = %+v", evs)
	}
}

// TestReplicas decides on one replica and checks that the Wait on another
// returns. On PostgreSQL the poll is slowed to a minute, so only NOTIFY can
// wake it in time; on SQLite the poll is what does.
func TestReplicas(t *testing.T) {
	forBackends(t, storetest.SharedBackends, func(t *testing.T, db storetest.DB) {
		ctx := context.Background()
		opts := approval.Options{PollInterval: 50 * time.Millisecond}
		if _, ok := db2store(t, db).(store.ApprovalWatcher); ok {
			opts = approval.Options{PollInterval: time.Minute, SafetyPollInterval: time.Minute}
		}
		fa, fb := open(t, db), open(t, db)
		opts.ReplicaID = "replica-a"
		a := fa.broker(t, opts)
		opts.ReplicaID = "replica-b"
		b := fb.broker(t, opts)

		for _, approve := range []bool{true, false} {
			req, err := a.Request(ctx, statement(agent))
			if err != nil {
				t.Fatal(err)
			}
			wait := waitAsync(ctx, a, req.ID)
			notDone(t, wait)
			if got, err := b.Get(ctx, req.ID); err != nil || got.Holder != "replica-a" {
				t.Fatalf("other replica's Get = %+v, %v", got, err)
			}
			start := time.Now()
			if _, err := b.Decide(ctx, req.ID, alice, approve, "decided elsewhere"); err != nil {
				t.Fatal(err)
			}
			res := recv(t, wait, 5*time.Second)
			want := approval.Denied
			if approve {
				want = approval.Approved
			}
			if res.err != nil || res.r.Status != want {
				t.Fatalf("Wait on replica a = %+v, %v; want %s", res.r, res.err, want)
			}
			t.Logf("released %s after %s", want, time.Since(start))
		}
	})
}

// db2store reports the type of db's store, to pick the expectations.
func db2store(t *testing.T, db storetest.DB) store.Store {
	st, err := db.Open()
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return st
}

func TestRestartAbandons(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db storetest.DB) {
		ctx := context.Background()
		f := open(t, db)
		// The first run of replica r1 requests and then "crashes": it is
		// never shut down before its successor starts.
		crashed, err := approval.NewBroker(f.st.(store.ApprovalStore), nil, nil, nil, nil, approval.Options{ReplicaID: "r1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { crashed.Shutdown(context.Background()) })
		mine, err := crashed.Request(ctx, statement(agent))
		if err != nil {
			t.Fatal(err)
		}
		other := f.broker(t, approval.Options{ReplicaID: "r2"})
		theirs, err := other.Request(ctx, statement(agent))
		if err != nil {
			t.Fatal(err)
		}

		restarted := f.broker(t, approval.Options{ReplicaID: "r1"})
		got, err := restarted.Get(ctx, mine.ID)
		if err != nil || got.Status != approval.Withdrawn || !strings.Contains(got.Reason(), "abandoned") || got.Decided.By != approval.SystemDecider {
			t.Fatalf("request of the restarted replica = %+v, %v", got, err)
		}
		if got, _ := restarted.Get(ctx, theirs.ID); got.Status != approval.Pending {
			t.Fatalf("another replica's request was touched: %+v", got)
		}
		evs := f.events(t, audit.KindApprovalDecided, mine.ID)
		if len(evs) != 1 || evs[0].Decision != "withdrawn" || evs[0].Extra["by"] != approval.SystemDecider {
			t.Fatalf("decided events = %+v", evs)
		}
	})
}

func TestShutdown(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	b, err := approval.NewBroker(f.st.(store.ApprovalStore), f.log, nil, nil, nil, approval.Options{ReplicaID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	other := f.broker(t, approval.Options{ReplicaID: "other"})
	mine, err := b.Request(ctx, statement(agent))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := other.Request(ctx, statement(agent))
	if err != nil {
		t.Fatal(err)
	}
	waitMine, waitTheirs := waitAsync(ctx, b, mine.ID), waitAsync(ctx, b, theirs.ID)
	notDone(t, waitMine)
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	res := recv(t, waitMine, 5*time.Second)
	if res.err != nil || res.r.Status != approval.Withdrawn || !strings.Contains(res.r.Reason(), "shut down") {
		t.Fatalf("Wait on a held request after Shutdown = %+v, %v", res.r, res.err)
	}
	// Another replica's request stays pending; the wait on it ends.
	if res := recv(t, waitTheirs, 5*time.Second); !errors.Is(res.err, approval.ErrClosed) {
		t.Fatalf("Wait on another replica's request after Shutdown = %+v, %v", res.r, res.err)
	}
	if got, _ := other.Get(ctx, theirs.ID); got.Status != approval.Pending {
		t.Fatalf("another replica's request = %s", got.Status)
	}
	if _, err := b.Request(ctx, statement(agent)); !errors.Is(err, approval.ErrClosed) {
		t.Fatalf("Request after Shutdown = %v", err)
	}
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}

func TestRequestValidation(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	b := f.broker(t, approval.Options{})
	for name, mod := range map[string]func(r *approval.Request){
		"no principal":      func(r *approval.Request) { r.Principal = identity.Principal{} },
		"no connection":     func(r *approval.Request) { r.Connection = "" },
		"no statement":      func(r *approval.Request) { r.Statement = "" },
		"no reviewers":      func(r *approval.Request) { r.Reviewers = nil },
		"expired already":   func(r *approval.Request) { r.Expires = time.Now().Add(-time.Second) },
		"unknown kind":      func(r *approval.Request) { r.Kind = "table" },
		"session no grant":  func(r *approval.Request) { r.Kind = approval.KindSession },
		"negative required": func(r *approval.Request) { r.Required = -1 },
	} {
		r := statement(agent)
		mod(&r)
		if _, err := b.Request(ctx, r); err == nil {
			t.Errorf("%s: Request succeeded", name)
		}
	}
	if list, _ := b.List(ctx, approval.Filter{}); len(list) != 0 {
		t.Fatalf("invalid requests were stored: %v", list)
	}

	// A session grant runs for its duration from the approval.
	r := statement(agent)
	r.Kind, r.Statement, r.GrantDuration = approval.KindSession, "", time.Hour
	req, err := b.Request(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Decide(ctx, req.ID, alice, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := got.Decided.At.Add(time.Hour); !got.GrantedUntil().Equal(want) || got.View().GrantDuration != "1h0m0s" {
		t.Fatalf("GrantedUntil = %s, want %s", got.GrantedUntil(), want)
	}
}

func TestBind(t *testing.T) {
	key := []byte("key")
	base := approval.Bind(key, "SELECT $1", [][]byte{[]byte("a")})
	if len(base) != 64 {
		t.Fatalf("Bind = %q, want 64 hex digits", base)
	}
	for name, h := range map[string]string{
		"other param":       approval.Bind(key, "SELECT $1", [][]byte{[]byte("b")}),
		"NULL":              approval.Bind(key, "SELECT $1", [][]byte{nil}),
		"empty":             approval.Bind(key, "SELECT $1", [][]byte{{}}),
		"no params":         approval.Bind(key, "SELECT $1", nil),
		"shifted boundary":  approval.Bind(key, "SELECT $", [][]byte{[]byte("1a")}),
		"other key":         approval.Bind([]byte("other"), "SELECT $1", [][]byte{[]byte("a")}),
		"statement changed": approval.Bind(key, "SELECT  $1", [][]byte{[]byte("a")}),
	} {
		if h == base {
			t.Errorf("%s: same hash", name)
		}
	}
	if approval.Bind(key, "SELECT $1", [][]byte{nil}) == approval.Bind(key, "SELECT $1", [][]byte{{}}) {
		t.Error("NULL and empty string hash alike")
	}
}

// logBuffer is a slog handler target safe for the notifier goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// failing is a notifier that always fails.
type failing struct{ calls chan string }

func (f failing) Name() string { return "failing" }
func (f failing) Notify(ctx context.Context, r *approval.Request) error {
	f.calls <- r.ID
	return fmt.Errorf("receiver is down")
}

func TestNotifierFailureKeepsRequest(t *testing.T) {
	ctx := context.Background()
	f := open(t, storetest.SQLiteDB(t))
	var logs logBuffer
	calls := make(chan string, 1)
	b, err := approval.NewBroker(f.st.(store.ApprovalStore), f.log, []approval.Notifier{failing{calls}}, nil,
		slog.New(slog.NewTextHandler(&logs, nil)), approval.Options{ReplicaID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(ctx)
	req, err := b.Request(ctx, statement(agent))
	if err != nil {
		t.Fatalf("a failing notifier failed the request: %v", err)
	}
	select {
	case id := <-calls:
		if id != req.ID {
			t.Fatalf("notified %q, want %q", id, req.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("notifier not called")
	}
	wait := waitAsync(ctx, b, req.ID)
	if _, err := b.Decide(ctx, req.ID, alice, true, ""); err != nil {
		t.Fatal(err)
	}
	if res := recv(t, wait, 5*time.Second); res.err != nil || res.r.Status != approval.Approved {
		t.Fatalf("Wait = %+v, %v", res.r, res.err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "notification failed") {
		if time.Now().After(deadline) {
			t.Fatalf("failure not logged: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoGoroutineOutlivesShutdown: the loops, the change feed and the
// notifications all end with Shutdown.
func TestNoGoroutineOutlivesShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db storetest.DB) {
		ctx := context.Background()
		f := open(t, db)
		before := runtime.NumGoroutine()
		slow := &approval.Webhook{URL: "http://127.0.0.1:1/unreachable", Secret: []byte("k"), MaxAttempts: 100, Backoff: time.Hour}
		b, err := approval.NewBroker(f.st.(store.ApprovalStore), f.log, []approval.Notifier{slow}, nil, nil,
			approval.Options{ReplicaID: "leak", PollInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		req, err := b.Request(ctx, statement(agent))
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wait := waitAsync(wctx, b, req.ID)
		time.Sleep(50 * time.Millisecond)
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		if err := b.Shutdown(sctx); err != nil {
			t.Fatal(err)
		}
		recv(t, wait, 5*time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines before, %d after Shutdown:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
