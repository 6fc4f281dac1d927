package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

// auditFixture is an audit log on a SQLite store in t's temporary
// directory, with n events, and the verifier of its checkpoints. Both are
// closed when t ends.
func auditFixture(t *testing.T, n int) (store.Store, *audit.Log, note.Verifiers) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, vkey, err := audit.LoadOrCreateSigner(filepath.Join(dir, "audit.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(ctx, st, signer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Shutdown(ctx) })
	for range n {
		if _, err := log.Append(ctx, audit.Event{Kind: audit.KindGatewayStart}); err != nil {
			t.Fatal(err)
		}
	}
	return st, log, note.VerifierList(v)
}

func TestPrunerPrunesAndStops(t *testing.T) {
	ctx := context.Background()
	st, log, vs := auditFixture(t, 5)
	if _, err := log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	// Retention below the config file's minimum: only code can set it.
	p := &pruner{audit: log, st: st, verifiers: vs, log: slog.New(slog.DiscardHandler),
		auditRetention: time.Nanosecond, recRetention: time.Nanosecond, every: time.Hour,
		now: func() time.Time { return time.Now().Add(time.Minute) }}
	p.start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := st.Prunes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 && ps[0].Head.Size == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no prune at start: %+v", ps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.shutdown()
	p.shutdown() // idempotent
	// database/sql and the SQLite driver end the goroutines that watch a
	// transaction's or a query's context after it returns, not before: on
	// a busy machine some are still there. A goroutine the pruner leaked
	// would stay.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after shutdown, %d before start:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
	}
	if _, err := log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, vs)
	if err != nil || !rep.OK() || rep.PrunedBelow != 5 {
		t.Fatalf("Verify after prune = %+v, %v", rep, err)
	}
}

// TestPrunerWaitsForExport checks that retention keeps the events an
// audit.export sink has not accepted, and says so in the log.
func TestPrunerWaitsForExport(t *testing.T) {
	ctx := context.Background()
	st, log, vs := auditFixture(t, 6)
	if _, err := log.Checkpoint(ctx); err != nil { // size 6
		t.Fatal(err)
	}
	if err := st.AdvanceExportCursor(ctx, "siem", 0, 3); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	p := &pruner{audit: log, st: st, verifiers: vs, log: slog.New(slog.NewTextHandler(&logged, nil)),
		auditRetention: time.Nanosecond, exportSinks: []string{"siem"}, every: time.Hour,
		now: func() time.Time { return time.Now().Add(time.Minute) }}
	p.runOnce(ctx)
	if ps, err := st.Prunes(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("pruned %+v (%v) although the sink has only events below 3 and the only checkpoint is at 6", ps, err)
	}
	if !strings.Contains(logged.String(), "until an export sink accepts them") || !strings.Contains(logged.String(), "sink=siem") {
		t.Fatalf("the hold was not logged: %s", logged.String())
	}
	// The sink catches up: the next run prunes.
	if err := st.AdvanceExportCursor(ctx, "siem", 3, 6); err != nil {
		t.Fatal(err)
	}
	p.runOnce(ctx)
	if ps, err := st.Prunes(ctx); err != nil || len(ps) != 1 || ps[0].Head.Size != 6 {
		t.Fatalf("after the sink caught up: prunes %+v, %v; want one below 6", ps, err)
	}
}

func TestPrunerOffWithoutRetention(t *testing.T) {
	p := &pruner{every: time.Hour}
	p.start()
	p.shutdown()
	var nilPruner *pruner
	nilPruner.shutdown() // a gateway that never started
}
