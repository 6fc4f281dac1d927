package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// RunApprovals is the conformance suite of store.ApprovalStore (and of
// store.ApprovalWatcher where a store implements it). newDB is called once
// per test and returns a fresh, empty database whose store implements
// ApprovalStore.
func RunApprovals(t *testing.T, newDB func(t *testing.T) DB) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open func() store.ApprovalStore)
	}{
		{"RoundTrip", testApprovalRoundTrip},
		{"Query", testApprovalQuery},
		{"CompareAndSwap", testApprovalCAS},
		{"Race", testApprovalRace},
		{"Watch", testApprovalWatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t)
			tc.fn(t, func() store.ApprovalStore {
				t.Helper()
				s, err := db.Open()
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				as, ok := s.(store.ApprovalStore)
				if !ok {
					t.Fatalf("%T does not implement store.ApprovalStore", s)
				}
				return as
			})
		})
	}
}

func approval(i int) store.Approval {
	return store.Approval{
		ID:         fmt.Sprintf("ap%03d", i),
		Status:     []string{"pending", "approved", "denied"}[i%3],
		Principal:  []string{"ci-agent", "deployer"}[i%2],
		Connection: []string{"shop", "ledger"}[i%2],
		Holder:     []string{"replica-a", "replica-b"}[i%2],
		Created:    t0.Add(time.Duration(i) * time.Minute),
		Expires:    t0.Add(time.Duration(i)*time.Minute + 15*time.Minute),
		Data:       []byte(fmt.Sprintf(`{"n":%d}`, i)),
	}
}

func approvalIDs(as []store.Approval) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func testApprovalRoundTrip(t *testing.T, open func() store.ApprovalStore) {
	ctx := context.Background()
	s := open()
	if _, err := s.Approval(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Approval(unknown) err = %v, want ErrNotFound", err)
	}
	a := approval(1)
	a.Version = 42 // ignored: a new request is version 1
	if err := s.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApproval(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateApproval err = %v, want ErrExists", err)
	}
	for name, bad := range map[string]store.Approval{
		"no id":     {Status: "pending", Data: []byte("{}")},
		"no status": {ID: "x", Data: []byte("{}")},
		"no data":   {ID: "x", Status: "pending"},
	} {
		if err := s.CreateApproval(ctx, bad); err == nil {
			t.Errorf("CreateApproval(%s) succeeded", name)
		}
	}
	got, err := s.Approval(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.Version = 1
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Approval = %+v\nwant %+v", got, want)
	}
	// A second handle (another replica) reads the same row.
	if got2, err := open().Approval(ctx, a.ID); err != nil || !reflect.DeepEqual(got2, want) {
		t.Fatalf("other handle: Approval = %+v, %v", got2, err)
	}
}

func testApprovalQuery(t *testing.T, open func() store.ApprovalStore) {
	ctx := context.Background()
	s := open()
	if as, err := s.Approvals(ctx, store.ApprovalQuery{}); err != nil || len(as) != 0 {
		t.Fatalf("empty store: %v, %v", as, err)
	}
	for i := 0; i < 6; i++ {
		if err := s.CreateApproval(ctx, approval(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    store.ApprovalQuery
		want []string
	}{
		{"all newest first", store.ApprovalQuery{}, []string{"ap005", "ap004", "ap003", "ap002", "ap001", "ap000"}},
		{"status", store.ApprovalQuery{Status: "pending"}, []string{"ap003", "ap000"}},
		{"principal", store.ApprovalQuery{Principal: "deployer"}, []string{"ap005", "ap003", "ap001"}},
		{"connection", store.ApprovalQuery{Connection: "shop"}, []string{"ap004", "ap002", "ap000"}},
		{"holder and status", store.ApprovalQuery{Holder: "replica-b", Status: "pending"}, []string{"ap003"}},
		{"ids", store.ApprovalQuery{IDs: []string{"ap001", "ap004", "nope"}}, []string{"ap004", "ap001"}},
		{"empty ids", store.ApprovalQuery{IDs: []string{}}, []string{}},
		{"expires by", store.ApprovalQuery{ExpiresBy: approval(2).Expires}, []string{"ap002", "ap001", "ap000"}},
		{"limit", store.ApprovalQuery{Limit: 2}, []string{"ap005", "ap004"}},
		{"no limit", store.ApprovalQuery{Limit: -1, Status: "denied"}, []string{"ap005", "ap002"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, err := s.Approvals(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := approvalIDs(as); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testApprovalCAS(t *testing.T, open func() store.ApprovalStore) {
	ctx := context.Background()
	s := open()
	a := approval(0)
	if err := s.UpdateApproval(ctx, store.Approval{ID: "nope", Status: "approved", Version: 1, Data: []byte("{}")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateApproval(unknown) err = %v, want ErrNotFound", err)
	}
	if err := s.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	upd := a
	upd.Version = 1
	upd.Status, upd.Holder, upd.Data = "approved", "replica-z", []byte(`{"decided":true}`)
	upd.Created = t0.Add(time.Hour) // ignored: creation time never changes
	if err := s.UpdateApproval(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err := s.Approval(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := upd
	want.Version, want.Created = 2, a.Created
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after update: %+v\nwant %+v", got, want)
	}
	// A writer that read version 1 lost the race.
	stale := upd
	stale.Status = "denied"
	if err := s.UpdateApproval(ctx, stale); !errors.Is(err, store.ErrChanged) {
		t.Fatalf("stale UpdateApproval err = %v, want ErrChanged", err)
	}
	if got, _ := s.Approval(ctx, a.ID); got.Status != "approved" {
		t.Fatalf("stale update was written: %+v", got)
	}
}

// testApprovalRace has two handles (replicas) update one version at once,
// many times: exactly one of each pair must win.
func testApprovalRace(t *testing.T, open func() store.ApprovalStore) {
	ctx := context.Background()
	s1, s2 := open(), open()
	a := approval(0)
	if err := s1.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 10; v++ {
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		for i, s := range []store.ApprovalStore{s1, s2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := a
				u.Version, u.Data = v, []byte(fmt.Sprintf(`{"writer":%d}`, i))
				errs[i] = s.UpdateApproval(ctx, u)
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrChanged):
				t.Fatalf("version %d: %v", v, err)
			}
		}
		if wins != 1 {
			t.Fatalf("version %d: %d writers won, want 1 (%v)", v, wins, errs)
		}
	}
	if got, err := s1.Approval(ctx, a.ID); err != nil || got.Version != 11 {
		t.Fatalf("final version = %d, %v; want 11", got.Version, err)
	}
}

// testApprovalWatch checks that a watching store hears of updates made
// through another handle. Stores without ApprovalWatcher are polled by
// their callers, so there is nothing to test for them.
func testApprovalWatch(t *testing.T, open func() store.ApprovalStore) {
	s := open()
	w, ok := s.(store.ApprovalWatcher)
	if !ok {
		t.Skipf("%T does not implement ApprovalWatcher: callers poll", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan struct{})
	ids := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- w.WatchApprovals(ctx, func() { close(listening) }, func(id string) { ids <- id })
	}()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("WatchApprovals: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening after 10s")
	}
	other := open()
	a := approval(0)
	if err := other.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	u := a
	u.Version, u.Status = 1, "approved"
	if err := other.UpdateApproval(ctx, u); err != nil {
		t.Fatal(err)
	}
	// A failed update notifies nobody.
	if err := other.UpdateApproval(ctx, u); !errors.Is(err, store.ErrChanged) {
		t.Fatalf("stale update err = %v", err)
	}
	for i, what := range []string{"create", "update"} {
		select {
		case id := <-ids:
			if id != a.ID {
				t.Fatalf("notification %d (%s) = %q, want %q", i, what, id, a.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification of the %s after 10s", what)
		}
	}
	select {
	case id := <-ids:
		t.Fatalf("unexpected notification %q", id)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WatchApprovals after cancel = %v, want context.Canceled", err)
	}
}
