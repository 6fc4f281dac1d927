package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
)

// TestExporterStreamsAndStops: each sink streams on its own (one receiver
// down does not hold up the other), the metrics name the sink, and shutdown
// ends every goroutine.
func TestExporterStreamsAndStops(t *testing.T) {
	ctx := context.Background()
	st, _, _ := auditFixture(t, 5)
	var got atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for _, c := range b {
			if c == '\n' {
				got.Add(1)
			}
		}
	}))
	defer up.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()

	sink := func(name, url string) config.AuditExport {
		return config.AuditExport{Name: name, URL: url, Format: "jsonl", BatchSize: 2,
			Interval: 10 * time.Millisecond, Timeout: time.Second}
	}
	cfg := &config.Config{Audit: config.Audit{Export: []config.AuditExport{sink("up", up.URL), sink("down", down.URL)}}}
	m := metrics.New()
	before := runtime.NumGoroutine()
	e, err := startExport(cfg, st, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < 5 || sinkMetric(t, m, "gatehouse_audit_export_failures_total", "down") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("up received %d events; down failed %v times", got.Load(), sinkMetric(t, m, "gatehouse_audit_export_failures_total", "down"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e.shutdown(sctx)
	e.shutdown(sctx) // a second stop only tries the last delivery again
	var never *exporter
	never.shutdown(ctx) // a gateway that never started

	for name, want := range map[string]float64{"up": 5, "down": 0} {
		if n := sinkMetric(t, m, "gatehouse_audit_export_events_total", name); n != want {
			t.Errorf("events accepted by %s = %v, want %v", name, n, want)
		}
	}
	if lag := sinkMetric(t, m, "gatehouse_audit_export_lag_events", "down"); lag != 5 {
		t.Errorf("lag of the sink that is down = %v, want 5", lag)
	}
	if n := sinkMetric(t, m, "gatehouse_audit_export_failures_total", "up"); n != 0 {
		t.Errorf("failures of the sink that is up = %v", n)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after shutdown, %d before start", runtime.NumGoroutine(), before)
		}
	}
}

// sinkMetric reads a counter or gauge of one sink as /metrics would show
// it; -1 if there is no such series.
func sinkMetric(t *testing.T, m *metrics.Metrics, name, sink string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == sink {
					return mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
