package metrics

import "testing"

func TestWatchAuditRestamps(t *testing.T) {
	m := New()
	n := int64(0)
	m.WatchAuditRestamps(func() int64 { return n })
	n = 7
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "gatehouse_audit_restamped_events_total" {
			continue
		}
		if got := f.GetMetric()[0].GetCounter().GetValue(); got != 7 {
			t.Fatalf("gatehouse_audit_restamped_events_total = %v, want 7 (read when scraped)", got)
		}
		return
	}
	t.Fatal("gatehouse_audit_restamped_events_total not registered")
}
