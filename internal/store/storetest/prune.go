package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func testPrune(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	if ps, err := s.Prunes(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("Prunes on a new store = %v, %v; want none", ps, err)
	}
	appendN(t, s, 0, 10)
	p := store.Prune{Head: head(4), Checkpoint: []byte("checkpoint at 4\n"), Time: t0}
	if err := s.PruneEvents(ctx, p); err != nil {
		t.Fatalf("PruneEvents: %v", err)
	}
	recs, err := s.Events(ctx, store.Query{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := indexes(recs); !reflect.DeepEqual(got, []int64{4, 5, 6, 7, 8, 9}) {
		t.Fatalf("events after prune = %v", got)
	}
	if recs, _ := s.Events(ctx, store.Query{Table: "orders", Limit: -1}); !reflect.DeepEqual(indexes(recs), []int64{6, 9}) {
		t.Errorf("table query after prune = %v", indexes(recs))
	}
	if h, _ := s.Head(ctx); !reflect.DeepEqual(h, head(10)) {
		t.Errorf("head after prune = %+v, want it unchanged", h)
	}
	ps, err := s.Prunes(ctx)
	if err != nil || len(ps) != 1 || !reflect.DeepEqual(ps[0], p) {
		t.Fatalf("Prunes = %+v, %v; want [%+v]", ps, err, p)
	}
	if err := s.PruneEvents(ctx, store.Prune{After: 0, Head: head(8), Checkpoint: []byte("x"), Time: t0}); !errors.Is(err, store.ErrPruneOrder) {
		t.Errorf("PruneEvents planned before the marker at 4: err = %v, want ErrPruneOrder", err)
	}
	for _, below := range []int64{4, 3, 11} {
		bad := store.Prune{After: 4, Head: head(below), Checkpoint: []byte("x"), Time: t0}
		if err := s.PruneEvents(ctx, bad); !errors.Is(err, store.ErrPruneOrder) {
			t.Errorf("PruneEvents below %d after 4 (log of 10): err = %v, want ErrPruneOrder", below, err)
		}
	}
	// Appends go on as before.
	appendN(t, s, 10, 2)
	p2 := store.Prune{After: 4, Head: head(12), Checkpoint: []byte("checkpoint at 12\n"), Time: t0.Add(time.Hour)}
	if err := s.PruneEvents(ctx, p2); err != nil {
		t.Fatalf("second PruneEvents: %v", err)
	}
	if recs, _ := s.Events(ctx, store.Query{}); len(recs) != 0 {
		t.Errorf("events after pruning all = %v", indexes(recs))
	}
	if ps, _ := s.Prunes(ctx); len(ps) != 2 || ps[1].Head.Size != 12 {
		t.Errorf("Prunes = %+v", ps)
	}
}

// testPruneGuards checks that the triggers allow deletes below the marker
// only, and keep the markers append-only.
func testPruneGuards(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	appendN(t, s, 0, 10)
	if err := db.Exec(`DELETE FROM audit_events WHERE idx = 0`); err == nil {
		t.Error("DELETE with no marker succeeded")
	}
	if err := s.PruneEvents(ctx, store.Prune{Head: head(4), Checkpoint: []byte("c"), Time: t0}); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`DELETE FROM audit_events WHERE idx = 4`,
		`DELETE FROM audit_events WHERE idx = 7`,
		`DELETE FROM audit_event_tables WHERE idx = 6`,
		`UPDATE audit_events SET data = '{}' WHERE idx = 5`,
		`UPDATE audit_prunes SET below = 8`,
		`DELETE FROM audit_prunes`,
	} {
		if err := db.Exec(sql); err == nil {
			t.Errorf("%s: succeeded", sql)
		}
	}
	if recs, _ := s.Events(ctx, store.Query{Limit: -1}); len(recs) != 6 {
		t.Errorf("events changed: %v", indexes(recs))
	}
	if ps, _ := s.Prunes(ctx); len(ps) != 1 || ps[0].Head.Size != 4 {
		t.Errorf("markers changed: %+v", ps)
	}
}
