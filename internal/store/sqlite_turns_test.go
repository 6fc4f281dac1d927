package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestSQLiteWritesTakeTurns runs index transactions back to back, each made
// slow by a trigger (as a slow disk or the race detector makes them), and
// checks that every other kind of write gets the lock after at most the
// append running and one more. SQLite's own busy handler polls: a writer
// that commits and begins again at once kept the lock from such writes
// until they failed with SQLITE_BUSY after SQLiteBusyTimeout, which refused
// a session that could not create its recording.
func TestSQLiteWritesTakeTurns(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	slowIndex(t, s, 100*time.Millisecond)

	var appends atomic.Int64
	appendCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		for i := int64(1); ; i++ {
			err := s.AppendEvents(appendCtx, []Record{jrec(i)}, jhead(i+1))
			if appendCtx.Err() != nil {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
			appends.Add(1)
		}
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("append: %v", err)
		}
	}()
	for appends.Load() == 0 {
		time.Sleep(time.Millisecond)
	}

	data := []byte("chunk")
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	writes := []struct {
		name string
		do   func() error
	}{
		{"CreateRecording", func() error {
			return s.CreateRecording(ctx, Recording{SessionID: "s1", Principal: "ci-agent", Connection: "shop", Role: "reader", Started: t0})
		}},
		{"AppendChunk", func() error {
			return s.AppendChunk(ctx, Chunk{SessionID: "s1", Seq: 0, Time: t0, Data: data, SHA256: sha256.Sum256(data)})
		}},
		{"FinishRecording", func() error {
			return s.FinishRecording(ctx, Recording{SessionID: "s1", Ended: t0.Add(time.Second), Bytes: 5})
		}},
		{"CreateApproval", func() error {
			return s.CreateApproval(ctx, Approval{ID: "a1", Status: "pending", Created: t0, Expires: t0.Add(time.Hour), Data: []byte(`{}`)})
		}},
		{"AdvanceExportCursor", func() error { return s.AdvanceExportCursor(ctx, "siem", 0, 1) }},
		{"PutCheckpoint", func() error { return s.PutCheckpoint(ctx, Checkpoint{Size: 1, Time: t0, Note: []byte("note")}) }},
	}
	for _, w := range writes {
		before := appends.Load()
		if err := w.do(); err != nil {
			t.Fatalf("%s while the index is busy: %v", w.name, err)
		}
		if n := appends.Load() - before; n > 2 {
			t.Errorf("%s waited for %d appends, want at most 2: writes do not take turns", w.name, n)
		}
	}
}

// slowIndex makes appending an event take about d of SQLite's time, by a
// trigger that counts to a number measured on the first event (appended
// here), so that the race detector's slower SQLite gets the same delay.
func slowIndex(t *testing.T, s *SQLite, d time.Duration) {
	t.Helper()
	trigger := func(n int64) {
		t.Helper()
		if _, err := s.db.Exec(`DROP TRIGGER IF EXISTS slow`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Exec(fmt.Sprintf(`CREATE TRIGGER slow AFTER INSERT ON audit_events BEGIN
			SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) SELECT i FROM n);
			END`, n)); err != nil {
			t.Fatal(err)
		}
	}
	const probe = 20_000
	trigger(probe)
	start := time.Now()
	if err := s.AppendEvents(context.Background(), []Record{jrec(0)}, jhead(1)); err != nil {
		t.Fatal(err)
	}
	trigger(max(probe, int64(float64(probe)*float64(d)/float64(time.Since(start)))))
}

// TestWriteTurnsCancel checks that a write waiting for its turn gives up
// when its context ends, and that the turn can be taken again once given
// back.
func TestWriteTurnsCancel(t *testing.T) {
	turns := newWriteTurns()
	if err := turns.take(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := turns.take(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("take while held: %v, want %v", err, context.DeadlineExceeded)
	}
	turns.release()
	if err := turns.take(context.Background()); err != nil {
		t.Fatalf("take after release: %v", err)
	}
	turns.release()
}
