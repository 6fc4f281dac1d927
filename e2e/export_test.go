package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/webhook"
)

// exportSecret signs the stream's deliveries in TestAuditExportStream.
const exportSecret = "export-hmac-6a1d9e4f2b"

// TestAuditExportStream: with audit.export configured, a statement run
// through the gateway reaches the SIEM's webhook as its audit events, in
// the exact lines `gatehouse audit export` writes, signed; the gateway's
// stop is delivered on shutdown, and the cursor in the store says so.
func TestAuditExportStream(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []audit.ExportLine
		bad   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !webhook.Verify([]byte(exportSecret), body, r.Header.Get(webhook.SignatureHeader)) ||
			r.Header.Get(audit.ExportHeader) != "siem" {
			bad = append(bad, "unsigned or unnamed delivery")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
			var x audit.ExportLine
			if err := json.Unmarshal(l, &x); err != nil {
				bad = append(bad, err.Error())
				continue
			}
			lines = append(lines, x)
		}
	}))
	defer srv.Close()
	snapshot := func() ([]audit.ExportLine, []string) {
		mu.Lock()
		defer mu.Unlock()
		return append([]audit.ExportLine(nil), lines...), append([]string(nil), bad...)
	}
	kindOf := func(l audit.ExportLine) audit.Event {
		ev, err := audit.ParseEvent(l.Event)
		if err != nil {
			t.Fatalf("event %d: %v", l.Index, err)
		}
		return ev
	}

	// The PostgreSQL store, as replicas share it: the cursor lives there.
	pgc := sharedPG(t)
	storeDB := pgc.NewDatabase(t)
	h := newHarness(t, withPostgresStore(pgc, storeDB), withCfg(func(c *config.Config) {
		c.Audit.Export = []config.AuditExport{{
			Name: "siem", URL: srv.URL + "/ingest", Format: "jsonl", Secret: config.NewSecret(exportSecret),
			BatchSize: 500, Interval: 50 * time.Millisecond, Timeout: 5 * time.Second,
		}}
	}))
	if _, stderr, err := h.psql("reader", agentToken, "-c", "select 4242 as export_probe"); err != nil {
		t.Fatal(err, stderr)
	}
	waitFor(t, func() bool {
		got, _ := snapshot()
		session := ""
		for _, l := range got {
			switch ev := kindOf(l); {
			case ev.Kind == audit.KindStatement && strings.Contains(ev.Statement, "export_probe"):
				session = ev.SessionID
			case ev.Kind == audit.KindStatementOutcome && session != "" && ev.SessionID == session:
				return true
			}
		}
		return false
	}, "the statement's outcome at the webhook")
	h.stop()

	got, bad := snapshot()
	if len(bad) > 0 {
		t.Fatalf("receiver refused: %v", bad)
	}
	var probe *audit.Event
	for i, l := range got {
		if l.Index != int64(i) {
			t.Fatalf("delivery %d is event %d: not every event, in order, once", i, l.Index)
		}
		if ev := kindOf(l); ev.Kind == audit.KindStatement && strings.Contains(ev.Statement, "export_probe") {
			probe = &ev
		}
	}
	if probe == nil || probe.Principal == nil || probe.Principal.Name != "ci-agent" || probe.Decision != "allow" {
		t.Fatalf("statement event at the webhook: %+v", probe)
	}
	if first, last := kindOf(got[0]), kindOf(got[len(got)-1]); first.Kind != audit.KindGatewayStart || last.Kind != audit.KindGatewayStop {
		t.Errorf("stream runs from %s to %s, want gateway.start to gateway.stop", first.Kind, last.Kind)
	}

	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, pgc.DSN(storeDB))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var want bytes.Buffer
	if err := audit.ExportJSONL(ctx, &want, st, store.Query{Limit: -1}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(want.String(), "\n"); n != len(got) {
		t.Errorf("the store holds %d events, the webhook got %d", n, len(got))
	}
	if pos, err := st.ExportCursor(ctx, "siem"); err != nil || pos != int64(len(got)) {
		t.Errorf("cursor after stop = %d, %v; want %d", pos, err, len(got))
	}
	if n := testutilCounter(t, h, "gatehouse_audit_export_events_total"); n != float64(len(got)) {
		t.Errorf("gatehouse_audit_export_events_total = %v, want %d", n, len(got))
	}
	if strings.Contains(h.logs.String(), exportSecret) {
		t.Error("the gateway logged the export secret")
	}
}
