package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func policyTestCmd(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(gatehouseBinary(t), append([]string{"policy", "test", "--config", "../examples/pci.yaml",
		"--identity", "ci-agent", "--connection", "shop", "--role", "writer"}, args...)...)
	cmd.Env = cleanEnv()
	for k, v := range baseEnv(t, nil, "") {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// TestPolicyTestCommandCorpus runs the whole guardrail corpus through
// `gatehouse policy test --jsonl` and checks every verdict, with the input's
// other fields echoed back.
func TestPolicyTestCommandCorpus(t *testing.T) {
	corpus, err := os.ReadFile(filepath.Join(sharedDir(t), "corpus", "pg-guardrails.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := policyTestCmd(t, "--jsonl")
	cmd.Stdin = bytes.NewReader(corpus)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1 (the strictest verdict of the corpus is deny); stderr %s", code, stderr.String())
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			ID, Verdict, Rule, Why string
			Expect                 string `json:"-"`
		}
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(sc.Bytes(), &rec)
		n++
		if rec.ID == "" || rec.Why == "" {
			t.Errorf("input fields not echoed: %s", sc.Text())
		}
		if _, ok := raw["statements"]; !ok {
			t.Errorf("%s: no statement facts", rec.ID)
		}
	}
	cases := loadGuardrails(t)
	if n != len(cases) {
		t.Fatalf("%d output lines for %d cases", n, len(cases))
	}
	// Verdicts: compare line by line with the corpus.
	sc = bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		var rec struct{ Verdict, Rule string }
		_ = json.Unmarshal(sc.Bytes(), &rec)
		if rec.Verdict != cases[i].Verdict {
			t.Errorf("%s: verdict %s (rule %s), corpus says %s", cases[i].ID, rec.Verdict, rec.Rule, cases[i].Verdict)
		}
	}
}

func TestPolicyTestCommandExitStatus(t *testing.T) {
	for sql, want := range map[string]int{
		"select * from orders":           0,
		"drop table payments":            1,
		"update payments set amount = 1": 2,
		"select 1; delete from payments": 1,
		"DELET FROM payments":            1,
	} {
		cmd := policyTestCmd(t, "--json", sql)
		out, _ := cmd.Output()
		if got := cmd.ProcessState.ExitCode(); got != want {
			t.Errorf("%q: exit %d, want %d\n%s", sql, got, want, out)
		}
		var res struct{ Verdict, Rule string }
		if err := json.Unmarshal(out, &res); err != nil || res.Rule == "" {
			t.Errorf("%q: bad JSON %v: %s", sql, err, out)
		}
	}
	// A principal described by groups and claims instead of a static identity.
	cmd := exec.Command(gatehouseBinary(t), "policy", "test", "--config", "../examples/pci.yaml", "--identity", "repo:acme/shop",
		"--groups", "contractors", "--connection", "shop", "--role", "writer", "select 1")
	cmd.Env = policyTestCmd(t).Env
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !bytes.Contains(out, []byte("role-access")) {
		t.Errorf("a principal outside agents: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}
