package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// prunedEnv is a log of 20 events with checkpoints at 5, 10, 15 and 20,
// pruned below 10.
func prunedEnv(t *testing.T, newDB func(*testing.T) storetest.DB) (*env, audit.PruneResult) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, newDB)
	e.appendCheckpointed(t, 4, 5)
	recs, err := e.st.Events(ctx, store.Query{From: 10, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Everything up to event 10 is older: the checkpoint at 10 is the
	// largest whose events are all older.
	before := recs[0].Time.Add(time.Nanosecond)
	vs := note.VerifierList(e.v)
	plan, err := audit.PlanPrune(ctx, e.st, vs, before, audit.NoPruneLimit)
	if err != nil || plan.From != 0 || plan.Below != 10 {
		t.Fatalf("PlanPrune = %+v, %v; want [0, 10)", plan, err)
	}
	if n, _ := e.st.Events(ctx, store.Query{Limit: -1}); len(n) != 20 {
		t.Fatalf("PlanPrune deleted events: %d left", len(n))
	}
	res, err := e.log.Prune(ctx, vs, before, audit.NoPruneLimit)
	if err != nil || res.Below != 10 || res.Events() != 10 || res.Checkpoint.Size != 10 {
		t.Fatalf("Prune = %+v, %v", res, err)
	}
	storetest.Settle(t, e.st) // the tamper tests edit the tables directly
	return e, res
}

func TestPrune(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		ctx := context.Background()
		e, _ := prunedEnv(t, newDB)
		recs, err := e.st.Events(ctx, store.Query{Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 11 || recs[0].Index != 10 || recs[10].Kind != string(audit.KindAuditPruned) {
			t.Fatalf("after prune: %d events from %d", len(recs), recs[0].Index)
		}
		rep := e.verify(t)
		if !rep.OK() || rep.PrunedBelow != 10 || rep.TreeSize != 21 || rep.LatestVerified != 20 {
			t.Fatalf("Verify after prune = %+v", rep)
		}
		// Nothing more to prune with the same cut-off; the log goes on.
		vs := note.VerifierList(e.v)
		if res, err := e.log.Prune(ctx, vs, recs[0].Time, audit.NoPruneLimit); err != nil || res.Events() != 0 {
			t.Fatalf("second Prune = %+v, %v; want nothing", res, err)
		}
		e.appendN(t, 3)
		if _, err := e.log.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		// A second prune starts from the first one's marker.
		res, err := e.log.Prune(ctx, vs, time.Now().Add(time.Hour), audit.NoPruneLimit)
		if err != nil || res.From != 10 || res.Below != 24 {
			t.Fatalf("Prune of everything = %+v, %v", res, err)
		}
		if _, err := e.log.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if rep := e.verify(t); !rep.OK() || rep.PrunedBelow != 24 || rep.TreeSize != 25 {
			t.Fatalf("Verify after second prune = %+v", rep)
		}
	})
}

// TestPruneHeldBackByExport checks that retention keeps what an export
// sink has not accepted: the limit from the slowest cursor caps the prune
// at the largest checkpoint not beyond it.
func TestPruneHeldBackByExport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, newDB)
		e.appendCheckpointed(t, 4, 5) // checkpoints at 5, 10, 15, 20
		sinks := []string{"siem", "archive"}
		if limit, _, err := audit.ExportHold(ctx, e.st, nil); err != nil || limit != audit.NoPruneLimit {
			t.Fatalf("ExportHold of no sinks = %d, %v", limit, err)
		}
		// archive has everything below 12, siem below 17.
		for name, pos := range map[string]int64{"siem": 17, "archive": 12} {
			if err := e.st.AdvanceExportCursor(ctx, name, 0, pos); err != nil {
				t.Fatal(err)
			}
		}
		limit, sink, err := audit.ExportHold(ctx, e.st, sinks)
		if err != nil || limit != 12 || sink != "archive" {
			t.Fatalf("ExportHold = %d, %q, %v; want 12, archive", limit, sink, err)
		}
		vs := note.VerifierList(e.v)
		everything := time.Now().Add(time.Hour)
		res, err := e.log.Prune(ctx, vs, everything, limit)
		if err != nil || res.Below != 10 || !res.HeldBack {
			t.Fatalf("Prune held at 12 = %+v, %v; want below 10, held back", res, err)
		}
		storetest.Settle(t, e.st)
		if recs, _ := e.st.Events(ctx, store.Query{Limit: 1}); len(recs) != 1 || recs[0].Index != 10 {
			t.Fatalf("after the held-back prune the log starts at %+v, want event 10", recs)
		}
		// A sink that has accepted nothing keeps everything.
		res, err = e.log.Prune(ctx, vs, everything, 0)
		if err != nil || res.Events() != 0 || !res.HeldBack {
			t.Fatalf("Prune held at 0 = %+v, %v; want nothing, held back", res, err)
		}
		// Once the sinks catch up, the rest goes.
		for name, pos := range map[string]int64{"siem": 17, "archive": 12} {
			if err := e.st.AdvanceExportCursor(ctx, name, pos, 21); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.log.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if limit, _, err = audit.ExportHold(ctx, e.st, sinks); err != nil {
			t.Fatal(err)
		}
		res, err = e.log.Prune(ctx, vs, everything, limit)
		if err != nil || res.From != 10 || res.Below != 21 || res.HeldBack {
			t.Fatalf("Prune after catching up = %+v, %v; want [10, 21)", res, err)
		}
		if rep := e.verify(t); !rep.OK() {
			t.Fatalf("Verify = %+v", rep)
		}
	})
}

func TestPruneRefusesTampered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, newDB)
		e.appendN(t, 6)
		if _, err := e.log.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		d := dialect{name: backendName(t), db: e.db}
		d.disableGuards(t)
		d.exec(t, `UPDATE audit_events SET data = replace(data, 'allow', 'deny') WHERE idx = 2`)
		_, err := e.log.Prune(ctx, note.VerifierList(e.v), time.Now().Add(time.Hour), audit.NoPruneLimit)
		if err == nil || !strings.Contains(err.Error(), "event 2") {
			t.Fatalf("Prune over an altered event: err = %v", err)
		}
		if recs, _ := e.st.Events(ctx, store.Query{Limit: -1}); len(recs) != 6 {
			t.Fatalf("Prune deleted events: %d left", len(recs))
		}
	})
}

func backendName(t *testing.T) string {
	if strings.Contains(t.Name(), "postgres") {
		return "postgres"
	}
	return "sqlite"
}

func TestTamperAfterPrune(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, d dialect)
		kind   audit.FindingKind
		first  int64
	}{
		{"delete event above the marker", func(t *testing.T, d dialect) {
			d.exec(t, `DELETE FROM audit_events WHERE idx = 13`)
		}, audit.FindingMissing, 13},
		{"delete past the marker", func(t *testing.T, d dialect) {
			d.exec(t, `DELETE FROM audit_events WHERE idx < 12`)
		}, audit.FindingMissing, 10},
		{"edit the stored range", func(t *testing.T, d dialect) {
			d.exec(t, `UPDATE audit_prunes SET hashes = `+d.bytes(make([]byte, 64)))
		}, audit.FindingPrune, 10},
		{"move the marker", func(t *testing.T, d dialect) {
			d.exec(t, `UPDATE audit_prunes SET below = 12`)
		}, audit.FindingPrune, 12},
		{"add a marker", func(t *testing.T, d dialect) {
			d.exec(t, `INSERT INTO audit_prunes (below, hashes, checkpoint, created)
				SELECT 15, hashes, checkpoint, created FROM audit_prunes`)
		}, audit.FindingPrune, 15},
		{"marker without event", func(t *testing.T, d dialect) {
			d.exec(t, `DELETE FROM audit_events WHERE kind = 'audit.pruned'`)
			d.exec(t, `UPDATE audit_head SET size = 20`)
		}, audit.FindingPrune, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
				e, _ := prunedEnv(t, newDB)
				d := dialect{name: backendName(t), db: e.db}
				d.disableGuards(t)
				if d.name == "postgres" {
					d.exec(t, `ALTER TABLE audit_prunes DISABLE TRIGGER USER`)
				} else {
					d.exec(t, `DROP TRIGGER audit_prunes_no_update`)
				}
				tc.tamper(t, d)
				rep := e.verify(t)
				if rep.OK() {
					t.Fatal("Verify found nothing")
				}
				found := false
				for _, f := range rep.Findings {
					found = found || (f.Kind == tc.kind && f.Index == tc.first)
				}
				if !found {
					t.Errorf("no %s finding at %d: %+v", tc.kind, tc.first, rep.Findings)
				}
			})
		})
	}
}
