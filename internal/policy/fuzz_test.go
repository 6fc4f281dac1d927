package policy

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/sql/pg"
)

// FuzzAnalyze runs arbitrary text through the analyser and the reference
// policy: nothing may panic, and text that does not parse must be denied.
func FuzzAnalyze(f *testing.F) {
	for _, c := range loadCorpus(f) {
		f.Add(c.SQL)
	}
	f.Add("SELECT 1\x00; DROP TABLE payments")
	f.Add("SELECT '\xf9'")
	f.Add("PREPARE p AS DELETE FROM payments; EXECUTE p")
	p := loadReference(f)
	a := pg.NewAnalyzer(64)
	f.Fuzz(func(t *testing.T, sql string) {
		an, err := a.Analyze(sql)
		d, _ := judge(p, a, pg.NewPreparedSet(), sql)
		if err != nil && (d.Action != Deny || d.Rule != RuleUnparseable) {
			t.Fatalf("unparseable %q: %s by %q", sql, d.Action, d.Rule)
		}
		for _, st := range an.Statements {
			if st.ParseError && err == nil {
				t.Fatalf("flagged statement without error: %q", sql)
			}
		}
	})
}
