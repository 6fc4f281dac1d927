package policy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/sql/pg"
)

// loadReference compiles testdata/reference.yaml with default allow.
func loadReference(t testing.TB) *Policy {
	t.Helper()
	f, err := os.Open("testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var rules []Rule
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("reference.yaml: %v", err)
	}
	p, err := Compile(Config{Rules: rules, Default: Allow})
	if err != nil {
		t.Fatalf("reference.yaml: %v", err)
	}
	return p
}

// findCorpus walks up from the package directory to the directory that
// holds shared/corpus beside the repository (here /work/shared/corpus).
func findCorpus(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "corpus", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("shared/corpus/%s not found above the package directory", name)
		}
		dir = parent
	}
}

type corpusCase struct {
	ID      string `json:"id"`
	Verdict string `json:"verdict"`
	SQL     string `json:"sql"`
	Why     string `json:"why"`
}

func loadCorpus(t testing.TB) []corpusCase {
	f, err := os.Open(findCorpus(t, "pg-guardrails.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var c corpusCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("corpus line %q: %v", sc.Text(), err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

var agent = &identity.Principal{Issuer: "static", Subject: "ci-agent", Name: "ci-agent", Groups: []string{"agents"}}

// judge runs a whole query string the way the proxy does: every statement
// is evaluated, EXECUTE resolved against the session's prepared statements,
// and the strictest decision wins.
func judge(p *Policy, a *pg.Analyzer, ps *pg.PreparedSet, sql string) (Decision, *pg.Analysis) {
	an, _ := a.Analyze(sql)
	worst := Decision{Action: Allow, Rule: RuleDefault}
	for _, st := range an.Statements {
		st = a.Resolve(st, ps)
		d := p.Evaluate(Input{Principal: agent, Connection: "shop", Role: "writer", Statement: st})
		if d.Action > worst.Action {
			worst = d
		}
		if d.Action == Allow {
			ps.Apply(st) // as if the server ran it
		}
	}
	return worst, an
}

func TestCorpus(t *testing.T) {
	p := loadReference(t)
	a := pg.NewAnalyzer(1000)
	cases := loadCorpus(t)
	if len(cases) == 0 {
		t.Fatal("empty corpus")
	}
	// Twice: the second pass is served from the cache and must agree.
	for pass := range 2 {
		passed := 0
		for _, c := range cases {
			d, an := judge(p, a, pg.NewPreparedSet(), c.SQL)
			if d.Action.String() != c.Verdict {
				facts, _ := json.Marshal(an.Statements)
				t.Errorf("pass %d: %s: %q: got %s (rule %s), want %s (%s)\nfacts: %s", pass, c.ID, c.SQL, d.Action, d.Rule, c.Verdict, c.Why, facts)
				continue
			}
			passed++
		}
		t.Logf("pass %d: %d/%d corpus cases", pass, passed, len(cases))
	}
}
