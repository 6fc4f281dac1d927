package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
)

// RunExportCursors is the conformance suite of store.ExportCursors. newDB
// is called once per test and returns a fresh, empty database.
func RunExportCursors(t *testing.T, newDB func(t *testing.T) DB) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open func() store.Store)
	}{
		{"Advance", testCursorAdvance},
		{"Reopen", testCursorReopen},
		{"Race", testCursorRace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t)
			tc.fn(t, func() store.Store {
				t.Helper()
				s, err := db.Open()
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

func cursorIs(t *testing.T, s store.Store, name string, want int64) {
	t.Helper()
	got, err := s.ExportCursor(context.Background(), name)
	if err != nil || got != want {
		t.Fatalf("ExportCursor(%q) = %d, %v; want %d", name, got, err, want)
	}
}

func testCursorAdvance(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	s := open()
	cursorIs(t, s, "siem", 0)
	// A sink that never advanced has no row: advancing it from anywhere
	// but 0 must not create one.
	if err := s.AdvanceExportCursor(ctx, "siem", 5, 10); !errors.Is(err, store.ErrCursorMoved) {
		t.Fatalf("advance of a new cursor from 5: %v, want ErrCursorMoved", err)
	}
	cursorIs(t, s, "siem", 0)
	if err := s.AdvanceExportCursor(ctx, "siem", 0, 10); err != nil {
		t.Fatalf("first advance: %v", err)
	}
	cursorIs(t, s, "siem", 10)
	cursorIs(t, s, "other", 0) // cursors are per sink
	for _, from := range []int64{0, 5, 11} {
		if err := s.AdvanceExportCursor(ctx, "siem", from, 20); !errors.Is(err, store.ErrCursorMoved) {
			t.Fatalf("advance from stale %d: %v, want ErrCursorMoved", from, err)
		}
	}
	cursorIs(t, s, "siem", 10)
	if err := s.AdvanceExportCursor(ctx, "siem", 10, 20); err != nil {
		t.Fatalf("advance 10→20: %v", err)
	}
	cursorIs(t, s, "siem", 20)
	// Backwards, standing still and nameless are refused outright.
	for _, c := range []struct {
		name     string
		from, to int64
	}{{"siem", 20, 20}, {"siem", 20, 15}, {"siem", -1, 3}, {"", 0, 1}} {
		err := s.AdvanceExportCursor(ctx, c.name, c.from, c.to)
		if err == nil || errors.Is(err, store.ErrCursorMoved) {
			t.Errorf("AdvanceExportCursor(%q, %d, %d) = %v, want a refusal", c.name, c.from, c.to, err)
		}
	}
	cursorIs(t, s, "siem", 20)
	cursorIs(t, s, "", 0)
}

func testCursorReopen(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	s := open()
	if err := s.AdvanceExportCursor(ctx, "siem", 0, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	cursorIs(t, s, "siem", 7)
	if err := s.AdvanceExportCursor(ctx, "siem", 7, 9); err != nil {
		t.Fatal(err)
	}
	cursorIs(t, s, "siem", 9)
}

// testCursorRace advances one cursor from the same position on many
// connections at once, as replicas streaming to one sink do: exactly one
// wins, for the first advance (an insert) and for a later one (an update).
func testCursorRace(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	s := open()
	var from int64
	for round := range 2 {
		const racers = 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			won  []int64
			errs []error
		)
		for i := range racers {
			wg.Add(1)
			go func(to int64) {
				defer wg.Done()
				err := s.AdvanceExportCursor(ctx, "siem", from, to)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, to)
				case !errors.Is(err, store.ErrCursorMoved):
					errs = append(errs, err)
				}
			}(from + 100 + int64(i))
		}
		wg.Wait()
		if len(errs) > 0 || len(won) != 1 {
			t.Fatalf("round %d, racing advances from %d: winners %v, errors %v; want one winner", round, from, won, errs)
		}
		cursorIs(t, s, "siem", won[0])
		from = won[0]
	}
}
