package pg

import (
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

var benchQueries = []struct{ name, sql string }{
	{"select", "SELECT abalance FROM pgbench_accounts WHERE aid = 42"},
	{"pgbench-update", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"},
	// As pgbench's TPC-B-like script sends it with -M simple: a signed
	// constant after a '+' (found by template since signs are taken in).
	{"tpcb-update", "UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 42;"},
	{"join3", "SELECT o.id, c.name, p.amount FROM orders o JOIN customers c ON c.id = o.customer_id JOIN payments p ON p.order_id = o.id WHERE o.created_at > '2024-01-01' AND p.amount > 100 ORDER BY o.id LIMIT 50"},
}

// BenchmarkAnalyze measures the paths a statement can take:
//   - parse: pg_query.Parse alone, the baseline the cache must beat;
//   - miss: a text never seen (Normalize + Parse + walk);
//   - hit-exact: the same text again (one map lookup);
//   - hit-literal: the same statement with new constants (found by template:
//     a scan in Go and a lookup; Normalize and a lookup before templates).
func BenchmarkAnalyze(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name+"/parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pg_query.Parse(q.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(q.name+"/miss", func(b *testing.B) {
			b.ReportAllocs()
			a := NewAnalyzer(1024)
			i := 0
			for b.Loop() {
				i++
				a.Analyze(q.sql + " -- " + strconv.Itoa(i))
			}
		})
		b.Run(q.name+"/hit-exact", func(b *testing.B) {
			b.ReportAllocs()
			a := NewAnalyzer(1024)
			a.Analyze(q.sql)
			for b.Loop() {
				a.Analyze(q.sql)
			}
		})
		if !strings.Contains(q.sql, "42") && !strings.Contains(q.sql, "100") {
			continue
		}
		b.Run(q.name+"/hit-literal", func(b *testing.B) {
			b.ReportAllocs()
			a := NewAnalyzer(1024)
			texts := make([]string, 1000)
			for i := range texts {
				texts[i] = strings.NewReplacer("42", strconv.Itoa(i+1000), "100", strconv.Itoa(i+1000)).Replace(q.sql)
			}
			a.Analyze(texts[0])
			i := 0
			for b.Loop() {
				a.Analyze(texts[i%len(texts)])
				i++
			}
		})
	}
}

// TestCacheHitAllocs keeps the exact-hit path allocation-free.
func TestCacheHitAllocs(t *testing.T) {
	a := NewAnalyzer(16)
	q := benchQueries[1].sql
	a.Analyze(q)
	if n := testing.AllocsPerRun(100, func() { a.Analyze(q) }); n > 0 {
		t.Errorf("exact cache hit allocates %v times, want 0", n)
	}
}
