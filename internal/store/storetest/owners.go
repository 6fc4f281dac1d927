package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ownersLogSize spans three of SQLite's owner blocks (1,024 indexes each)
// and part of a fourth.
const ownersLogSize = 3300

// ownerRec is event i of a log where sessions and principals come and go at
// different rates: "busy" has every third event; "sparse" one in 700, so
// most of its blocks hold one of its events; "burst" only events 1,000 to
// 1,100, across a block boundary; a new short session every 50 events; and
// some events belong to no session or principal.
func ownerRec(i int64) store.Record {
	r := store.Record{
		Index:      i,
		Time:       t0.Add(time.Duration(i) * time.Millisecond),
		Kind:       []string{"statement", "statement.outcome", "session.start", "statement", "statement.outcome"}[i%5],
		Connection: "shop",
		Decision:   "allow",
	}
	switch {
	case i%700 == 0:
		r.SessionID, r.Principal = "sparse", "auditor"
	case i >= 1000 && i < 1100 && i%2 == 0:
		r.SessionID, r.Principal = "burst", "deployer"
	case i%3 == 0:
		r.SessionID, r.Principal = "busy", "ci-agent"
	case i%11 == 0:
		// belongs to no session or principal
	default:
		r.SessionID, r.Principal = fmt.Sprintf("short-%d", i/50), "ci-agent"
	}
	switch {
	case i%4 == 0:
		r.Tables = []string{"payments"}
	case i%12 == 2:
		r.Tables = []string{"orders", "payments"}
	case i%500 == 3:
		r.Tables = []string{"refunds"}
	}
	r.Data = []byte(fmt.Sprintf(`{"n":%d,"session":%q}`, i, r.SessionID))
	r.Hash = tlog.RecordHash(r.Data)
	return r
}

// matches is the meaning of q's filters, for checking Events against.
func matches(q store.Query, r store.Record) bool {
	return (q.From == 0 || r.Index >= q.From) && (q.To == 0 || r.Index < q.To) &&
		(q.SessionID == "" || r.SessionID == q.SessionID) &&
		(q.Principal == "" || r.Principal == q.Principal) &&
		(q.Kind == "" || r.Kind == q.Kind) &&
		(q.Table == "" || slices.Contains(r.Tables, q.Table)) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since)) && (q.Until.IsZero() || r.Time.Before(q.Until))
}

// testOwnerQueries checks session, principal and table filters, alone and
// with others, on a log of several blocks: each query's result, and paging
// through it with From and Limit, must be what filtering every event
// gives. It then prunes part of a block and checks again.
func testOwnerQueries(t *testing.T, db DB, open func() store.Store) {
	ctx := context.Background()
	s := open()
	var all []store.Record
	for from := int64(0); from < ownersLogSize; from += 256 {
		var recs []store.Record
		for i := from; i < min(from+256, ownersLogSize); i++ {
			recs = append(recs, ownerRec(i))
		}
		if err := s.AppendEvents(ctx, recs, head(from+int64(len(recs)))); err != nil {
			t.Fatalf("AppendEvents(%d..): %v", from, err)
		}
		all = append(all, recs...)
	}
	Settle(t, s)

	queries := []store.Query{
		{SessionID: "busy"},
		{SessionID: "sparse"},
		{SessionID: "burst"},
		{SessionID: "short-20"},
		{SessionID: "short-20", Principal: "ci-agent"},
		{SessionID: "sparse", Principal: "ci-agent"},
		{SessionID: "nobody"},
		{Principal: "ci-agent"},
		{Principal: "auditor"},
		{Principal: "deployer", Kind: "statement"},
		{SessionID: "busy", Kind: "session.start"},
		{SessionID: "busy", Table: "payments"},
		{Principal: "auditor", Table: "payments"},
		{SessionID: "busy", From: 1023, To: 1025},
		{SessionID: "busy", From: 1024, To: 2048},
		{SessionID: "busy", From: 2040, To: 2050},
		{SessionID: "sparse", From: 701, To: 2100},
		{SessionID: "burst", From: 1023},
		{Principal: "ci-agent", To: 1},
		{Principal: "auditor", Since: t0.Add(1400 * time.Millisecond), Until: t0.Add(2801 * time.Millisecond)},
		{Table: "payments"},
		{Table: "orders", From: 1000, To: 1100},
		{Table: "refunds"},
		{Table: "refunds", Kind: "statement.outcome"},
		{Table: "nothing"},
		{Principal: "ci-agent", Table: "refunds"},
		{SessionID: "busy", Principal: "ci-agent", Table: "orders", From: 500},
	}
	check := func(stage string, q store.Query, all []store.Record) {
		t.Helper()
		var want []int64
		for _, r := range all {
			if matches(q, r) {
				want = append(want, r.Index)
			}
		}
		q.Limit = -1
		recs, err := s.Events(ctx, q)
		if err != nil {
			t.Fatalf("%s: Events(%+v): %v", stage, q, err)
		}
		if got := indexes(recs); !reflect.DeepEqual(got, append([]int64{}, want...)) {
			t.Errorf("%s: Events(%+v) = %d events %v…, want %d %v…", stage, q, len(got), head10(got), len(want), head10(want))
		}
		for _, r := range recs {
			if r.SessionID != all[r.Index-all[0].Index].SessionID {
				t.Fatalf("%s: event %d read back with session %q", stage, r.Index, r.SessionID)
			}
		}
		// Pages of 7, each starting after the last one's last event.
		var paged []int64
		for page := q; ; {
			page.Limit = 7
			recs, err := s.Events(ctx, page)
			if err != nil {
				t.Fatalf("%s: Events(%+v): %v", stage, page, err)
			}
			paged = append(paged, indexes(recs)...)
			if len(recs) < 7 {
				break
			}
			page.From = recs[len(recs)-1].Index + 1
		}
		if !reflect.DeepEqual(append([]int64{}, paged...), append([]int64{}, want...)) {
			t.Errorf("%s: Events(%+v) in pages of 7 = %d events, want %d", stage, q, len(paged), len(want))
		}
	}
	for _, q := range queries {
		check("whole log", q, all)
	}

	// Prune within the second block: the rest of it must still be found.
	const below = 1500
	if err := s.PruneEvents(ctx, store.Prune{Head: head(below), Checkpoint: []byte("checkpoint at 1500\n"), Time: t0}); err != nil {
		t.Fatalf("PruneEvents: %v", err)
	}
	for _, q := range queries {
		check("after a prune at 1500", q, all[below:])
	}
}

func head10(xs []int64) []int64 { return xs[:min(len(xs), 10)] }
