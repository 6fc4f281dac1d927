package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Finding a time range must seek, never scan: on a log of millions of
// events a scan takes longer than an auditor's query should (min and max
// in one SELECT, for one, make SQLite read a whole index).
func TestFirstAtOrAfterSeeks(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+firstAtOrAfterSQL, 0)
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
	searches := 0
	for _, step := range plan {
		if strings.HasPrefix(step, "SCAN audit_events") {
			t.Errorf("plan scans the log: %q\n%s", step, strings.Join(plan, "\n"))
		}
		if strings.HasPrefix(step, "SEARCH audit_events") {
			searches++
		}
	}
	if searches == 0 {
		t.Errorf("plan has no search of audit_events:\n%s", strings.Join(plan, "\n"))
	}
}
