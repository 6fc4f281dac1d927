//go:build !race

// The race detector slows the index (SQLite in Go) far more than the
// appends, below the rate this test needs it to keep up with.

package store

import (
	"context"
	"testing"
	"time"
)

// TestJournalStartsOverUnderLoad: with appends arriving all the time, the
// index never quite catches up between them, and the journal still starts
// over once it has grown past journalSyncAt, long before it is full:
// appends wait for the last few events to be indexed rather than for a
// whole round's once the journal is full. (It may also start over earlier,
// whenever a round's sync finds no append since: that is fine.)
func TestJournalStartsOverUnderLoad(t *testing.T) {
	e := newJournalEnv(t)
	j := e.open(t, true)
	defer j.Close()
	var last, peak int64
	deadline := time.Now().Add(20 * time.Second)
	for {
		// A busy gateway's rate, well within what the index keeps up with.
		appendBatches(t, j, 32)
		time.Sleep(time.Millisecond)
		j.mu.Lock()
		off := j.off
		j.mu.Unlock()
		if off < last {
			if last >= journalSyncAt {
				peak = last
				break
			}
			t.Logf("journal started over early, at %d bytes", last)
		}
		last = off
		if time.Now().After(deadline) {
			t.Fatalf("journal never started over from past journalSyncAt under load: offset %d", off)
		}
	}
	if peak >= journalLimit {
		t.Fatalf("journal started over at %d bytes, full; want before journalLimit (%d)", peak, journalLimit)
	}
	// Starting over from past journalSyncAt normally makes the appends of
	// the moment wait for the index (unless a round's sync found none in
	// flight); Stats counts and times whatever waits there were.
	st := j.Stats()
	t.Logf("index waits: %d, %v in all", st.IndexWaits, st.IndexWaitTime)
	if (st.IndexWaits > 0) != (st.IndexWaitTime > 0) {
		t.Errorf("Stats() = %+v: waits and their time disagree", st)
	}
	h, _ := j.Head(context.Background())
	checkEvents(t, j, h.Size)
	if st := j.Stats(); st.Unindexed != 0 {
		t.Errorf("Stats().Unindexed = %d once every event has been read back", st.Unindexed)
	}
}
