package metrics

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// gather returns the registry's metric families by name.
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	return byName
}

func TestWatchAudit(t *testing.T) {
	m := New()
	var commits, events, restamped, unindexed, waits int64
	var waited float64
	m.WatchAudit(AuditCounters{
		Commits:          func() int64 { return commits },
		Events:           func() int64 { return events },
		Restamped:        func() int64 { return restamped },
		Unindexed:        func() int64 { return unindexed },
		IndexWaits:       func() int64 { return waits },
		IndexWaitSeconds: func() float64 { return waited },
	})
	commits, events, restamped, unindexed, waits, waited = 3, 11, 7, 5, 2, 0.25 // read when scraped, not when watched
	got := gather(t, m)
	for name, want := range map[string]float64{
		"gatehouse_audit_commits_total":            3,
		"gatehouse_audit_events_total":             11,
		"gatehouse_audit_restamped_events_total":   7,
		"gatehouse_audit_index_waits_total":        2,
		"gatehouse_audit_index_wait_seconds_total": 0.25,
	} {
		f := got[name]
		if f == nil {
			t.Errorf("%s not registered", name)
			continue
		}
		if v := f.GetMetric()[0].GetCounter().GetValue(); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if f := got["gatehouse_audit_unindexed_events"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() != 5 {
		t.Errorf("gatehouse_audit_unindexed_events = %v, want a gauge of 5", f)
	}
}

// TestWatchAuditWithoutJournal: a store without a journal (PostgreSQL) has
// no index to wait for, and the gateway exports no figures for one.
func TestWatchAuditWithoutJournal(t *testing.T) {
	m := New()
	m.WatchAudit(AuditCounters{Commits: func() int64 { return 1 }, Events: func() int64 { return 2 }, Restamped: func() int64 { return 0 }})
	got := gather(t, m)
	for _, name := range []string{"gatehouse_audit_unindexed_events", "gatehouse_audit_index_waits_total", "gatehouse_audit_index_wait_seconds_total"} {
		if got[name] != nil {
			t.Errorf("%s exported without a journal", name)
		}
	}
	if got["gatehouse_audit_commits_total"] == nil {
		t.Error("gatehouse_audit_commits_total not registered")
	}
}

func TestAuditObserver(t *testing.T) {
	m := New()
	o := m.AuditObserver()
	o.ObserveCommit(3, 300*time.Microsecond)
	o.ObserveCommit(1, 2*time.Millisecond)
	o.ObserveWait(450 * time.Microsecond)
	got := gather(t, m)
	check := func(name string, count uint64, sum float64) {
		t.Helper()
		f := got[name]
		if f == nil {
			t.Fatalf("%s not registered", name)
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != count || h.GetSampleSum() < sum*0.999 || h.GetSampleSum() > sum*1.001 {
			t.Errorf("%s: count %d, sum %v; want %d, %v", name, h.GetSampleCount(), h.GetSampleSum(), count, sum)
		}
	}
	check("gatehouse_audit_commit_duration_seconds", 2, 0.0023)
	check("gatehouse_audit_commit_events", 2, 4)
	check("gatehouse_audit_wait_duration_seconds", 1, 0.00045)
}
