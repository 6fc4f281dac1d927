package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// checkTimeRanges compares s's events in each range of seconds after t0
// with a filter over secs, the second each event from index pruned on is
// stamped at.
func checkTimeRanges(t *testing.T, s Store, t0 time.Time, secs []int, pruned int, ranges [][2]int) {
	t.Helper()
	for _, r := range ranges {
		q := Query{Since: t0.Add(time.Duration(r[0]) * time.Second), Until: t0.Add(time.Duration(r[1]) * time.Second), Limit: -1}
		var want []int64
		for i := pruned; i < len(secs); i++ {
			if secs[i] >= r[0] && secs[i] < r[1] {
				want = append(want, int64(i))
			}
		}
		recs, err := s.Events(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, rec := range recs {
			got = append(got, rec.Index)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("events in [%ds, %ds) = %v, want %v", r[0], r[1], got, want)
		}
	}
}

// narrowTime must turn the time range into the index range first reports,
// keeping the tighter of it and the query's own, and say when nothing can
// match; what it returns is what the store's query reads, so a narrowTime
// that left the query alone would pass every result test and read the
// whole log.
func TestNarrowTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// Events 10..49, event i stamped at second i; found before ordered_from
	// (20), the event at 12 s comes first for any start up to it.
	first := func(_ context.Context, at time.Time, before bool) (int64, bool, error) {
		sec := at.Sub(t0) / time.Second
		if before && sec <= 12 {
			return 12, true, nil
		}
		return min(max(int64(sec), 20), 50), true, nil
	}
	secs := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	for _, tc := range []struct {
		name     string
		q        Query
		from, to int64
		none     bool
	}{
		{"no time", Query{From: 3, To: 7}, 3, 7, false},
		{"since", Query{Since: secs(30)}, 30, 0, false},
		{"since before ordered_from", Query{Since: secs(5)}, 12, 0, false},
		{"since below From", Query{Since: secs(30), From: 40}, 40, 0, false},
		{"until", Query{Until: secs(30)}, 0, 30, false},
		{"until below To", Query{Until: secs(30), To: 25}, 0, 25, false},
		{"until above To", Query{Until: secs(30), To: 45}, 0, 30, false},
		{"until at the start", Query{Until: secs(0)}, 0, 20, false},
		{"both", Query{Since: secs(30), Until: secs(35)}, 30, 35, false},
		{"empty range", Query{Since: secs(35), Until: secs(30)}, 0, 0, true},
		{"past the end", Query{Since: secs(60), Until: secs(70)}, 0, 0, true},
	} {
		q, none, err := narrowTime(context.Background(), tc.q, first)
		if err != nil {
			t.Fatal(err)
		}
		if none != tc.none || !none && (q.From != tc.from || q.To != tc.to) {
			t.Errorf("%s: From %d, To %d, none %v; want %d, %d, %v", tc.name, q.From, q.To, none, tc.from, tc.to, tc.none)
		}
	}

	empty := func(context.Context, time.Time, bool) (int64, bool, error) { return 0, false, nil }
	if _, none, err := narrowTime(context.Background(), Query{Since: t0}, empty); err != nil || !none {
		t.Errorf("empty log: none %v, %v; want none", none, err)
	}
	broken := errors.New("disk on fire")
	failing := func(context.Context, time.Time, bool) (int64, bool, error) { return 0, false, broken }
	if _, _, err := narrowTime(context.Background(), Query{Until: t0}, failing); !errors.Is(err, broken) {
		t.Errorf("failing store: err = %v, want %v", err, broken)
	}
}
