package store

import (
	"slices"
	"testing"
)

// TestUniqueTables checks that the rows an event's tables become have no
// duplicate keys whatever order the record gives them in, and that tables
// in increasing order, as the audit log writes them, are used as they are.
func TestUniqueTables(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, nil},
		{[]string{"payments"}, []string{"payments"}},
		{[]string{"orders", "payments"}, []string{"orders", "payments"}},
		{[]string{"payments", "orders", "payments"}, []string{"payments", "orders"}},
		{[]string{"orders", "orders"}, []string{"orders"}},
	} {
		got := uniqueTables(Record{Tables: tc.in})
		if !slices.Equal(got, tc.want) {
			t.Errorf("uniqueTables(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(got) > 0 && slices.Equal(tc.in, tc.want) && &got[0] != &tc.in[0] {
			t.Errorf("uniqueTables(%q) copied tables already in order", tc.in)
		}
	}
}
