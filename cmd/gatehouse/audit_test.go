package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/gateway"
)

func TestAuditPrune(t *testing.T) {
	s := newSite(t)
	if _, errs, st := s.run(t, "audit", "prune", "--config", s.config); st != 2 || !strings.Contains(errs, "audit.retention is not set") {
		t.Fatalf("prune without retention or --before: %d %s", st, errs)
	}
	if _, errs, st := s.run(t, "audit", "prune", "--config", s.config, "--before", "someday"); st != 2 || !strings.Contains(errs, "--before") {
		t.Fatalf("bad --before: %d %s", st, errs)
	}
	later := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	out, errs, st := s.run(t, "audit", "prune", "--config", s.config, "--before", later, "--dry-run")
	if st != 0 || !strings.Contains(out, "would prune events 0 to 3 (4 events") || !strings.Contains(out, "checkpoint of size 4") {
		t.Fatalf("prune --dry-run: %d\n%s%s", st, out, errs)
	}
	out, errs, st = s.run(t, "audit", "prune", "--config", s.config, "--before", later)
	if st != 0 || !strings.Contains(out, "pruned events 0 to 3 (4 events") {
		t.Fatalf("prune: %d\n%s%s", st, out, errs)
	}
	out, errs, st = s.run(t, "audit", "prune", "--config", s.config, "--before", "2020-01-01")
	if st != 0 || !strings.Contains(out, "nothing to prune") {
		t.Fatalf("prune again: %d\n%s%s", st, out, errs)
	}
	out, errs, st = s.run(t, "audit", "verify", "--config", s.config)
	if st != 0 || !strings.Contains(out, "ok\n") {
		t.Fatalf("verify after prune: %d\n%s%s", st, out, errs)
	}
	// Deleting above the marker is refused by the triggers, and found by
	// verify once they are gone.
	s.exec(t, `DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE idx = 5`)
	out, _, st = s.run(t, "audit", "verify", "--config", s.config)
	if st != 1 || !strings.Contains(out, "first bad event index: 5") {
		t.Fatalf("verify after deleting above the marker: %d\n%s", st, out)
	}
}

// TestAuditPruneKeepsUnexported checks that a prune keeps what a
// configured audit.export sink has not accepted, unless told otherwise.
func TestAuditPruneKeepsUnexported(t *testing.T) {
	s := newSite(t)
	withSink := testConfig + "audit:\n  export:\n    - {name: siem, url: \"http://127.0.0.1:1/\"}\n"
	if err := os.WriteFile(s.config, []byte(withSink), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := gateway.OpenStore(context.Background(), s.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.AdvanceExportCursor(context.Background(), "siem", 0, 2)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	out, errs, code := s.run(t, "audit", "prune", "--config", s.config, "--before", later)
	if code != 0 || !strings.Contains(out, "keeping events from index 2: export sink siem has not accepted them") || !strings.Contains(out, "nothing to prune") {
		t.Fatalf("prune with a sink behind: %d\n%s%s", code, out, errs)
	}
	out, errs, code = s.run(t, "audit", "prune", "--config", s.config, "--before", later, "--ignore-export")
	if code != 0 || !strings.Contains(out, "pruned events 0 to 3 (4 events") {
		t.Fatalf("prune --ignore-export: %d\n%s%s", code, out, errs)
	}
}
