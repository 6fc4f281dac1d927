package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// queryPlan is SQLite's EXPLAIN QUERY PLAN for query, one line per step.
func queryPlan(t *testing.T, s *SQLite, query string, args ...any) []string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

func openPlanStore(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Finding a time range must seek, never scan: on a log of millions of
// events a scan takes longer than an auditor's query should (min and max
// in one SELECT, for one, make SQLite read a whole index).
// The events before ordered_from are read by their index range only.
func TestFirstAtOrAfterSeeks(t *testing.T) {
	s := openPlanStore(t)
	for _, before := range []bool{false, true} {
		plan := queryPlan(t, s, firstAtOrAfterSQL("?1", before), 0)
		searches := 0
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN audit_events") {
				t.Errorf("before %v: plan scans the log: %q\n%s", before, step, strings.Join(plan, "\n"))
			}
			if strings.HasPrefix(step, "SEARCH audit_events") {
				searches++
			}
		}
		if searches == 0 {
			t.Errorf("before %v: plan has no search of audit_events:\n%s", before, strings.Join(plan, "\n"))
		}
	}
}

// The filters an auditor uses for the few events that matter (a kind other
// than a statement's, a refusal, a failure) must reach them through their
// partial indexes, not by reading the log; the common values scan in index
// order, which finds them at once.
func TestRareValuesUseTheirIndexes(t *testing.T) {
	s := openPlanStore(t)
	for _, tc := range []struct {
		q     Query
		index string
	}{
		{Query{Kind: "session.start"}, "audit_events_rare_kind"},
		{Query{Decision: "deny"}, "audit_events_rare_decision"},
		{Query{Decision: "review", Limit: 10}, "audit_events_rare_decision"},
		{Query{Outcome: "failure"}, "audit_events_rare_outcome"},
		{Query{Decision: "allow"}, ""},
		{Query{Outcome: "success"}, ""},
	} {
		query, args := buildEvents(tc.q, sqliteEvents)
		plan := strings.Join(queryPlan(t, s, query, args...), "\n")
		if tc.index != "" && !strings.Contains(plan, "USING INDEX "+tc.index) {
			t.Errorf("%+v: plan does not use %s:\n%s", tc.q, tc.index, plan)
		}
		if tc.index == "" && strings.Contains(plan, "rare_") {
			t.Errorf("%+v: plan uses a partial index that cannot hold the value:\n%s", tc.q, plan)
		}
	}
}
