package mask

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// corpusDir finds shared/corpus by walking up from the package directory: in
// the workspace shared/ sits beside the repository root, in CI beside the
// fresh clone, and either way some ancestor holds it. GATEHOUSE_SHARED
// overrides the search.
func corpusDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("GATEHOUSE_SHARED"); d != "" {
		return filepath.Join(d, "corpus")
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		c := filepath.Join(dir, "shared", "corpus")
		if _, err := os.Stat(filepath.Join(c, "pan-cases.jsonl")); err == nil {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			// Fail, not skip: a silently skipped corpus is a PCI control
			// nobody is testing.
			t.Fatal("shared/corpus/pan-cases.jsonl not found in any parent of the package directory; set GATEHOUSE_SHARED")
		}
		dir = parent
	}
}

type panCase struct {
	ID     string `json:"id"`
	Expect string `json:"expect"`
	Value  string `json:"value"`
	Why    string `json:"why"`
}

func readPANCases(t *testing.T) []panCase {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir(t), "pan-cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []panCase
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var c panCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("pan-cases.jsonl:%d: %v", line, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("pan-cases.jsonl holds no cases")
	}
	return cases
}

func TestPANCorpus(t *testing.T) {
	panOnly := mustNew(t, Config{PAN: true})
	all := mustNew(t, DefaultConfig())
	for _, c := range readPANCases(t) {
		t.Run(c.ID, func(t *testing.T) {
			src := []byte(c.Value)
			out, found := panOnly.AppendMask(nil, src)
			switch c.Expect {
			case "mask":
				if found == 0 || !panOnly.Scan(src) {
					t.Fatalf("%q: no PAN found (%s)", c.Value, c.Why)
				}
				if len(out) != len(src) {
					t.Errorf("%q -> %q: length changed", c.Value, out)
				}
				if panOnly.Scan(out) {
					t.Errorf("%q -> %q: a PAN survives", c.Value, out)
				}
			case "keep", "pass":
				if found != 0 || panOnly.Scan(src) || string(out) != c.Value {
					t.Fatalf("%q -> %q: masked, want kept (%s)", c.Value, out, c.Why)
				}
				// No other detector may claim it either.
				if all.Scan(src) {
					t.Errorf("%q: some detector fires, want none (%s)", c.Value, c.Why)
				}
			default:
				t.Fatalf("unknown expect %q", c.Expect)
			}
		})
	}
}

func mustNew(t testing.TB, cfg Config) *Masker {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
