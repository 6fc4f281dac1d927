// The race detector makes sync.Pool drop items at random, and json.Compact
// takes its scanner from a pool, so the count only holds without it.

//go:build !race

package audit

import "testing"

func TestAppendEventAllocs(t *testing.T) {
	e := statementEvent(1)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := appendEvent(buf[:0], &e); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("appendEvent into a large enough buffer: %v allocations, want 0", n)
	}
}
