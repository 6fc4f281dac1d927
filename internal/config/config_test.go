package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) Options {
	return Options{LookupEnv: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func pciEnv() map[string]string {
	return map[string]string{
		"GATEHOUSE_DATA":       "/tmp/gh",
		"SHOP_PG_ADDR":         "127.0.0.1:5432",
		"SHOP_READER_PASSWORD": "r-secret",
		"SHOP_WRITER_PASSWORD": "w-secret",
		"AGENT_TOKEN":          "agent-token",
		"APPROVER_TOKEN":       "approver-token",
		"AUDITOR_TOKEN":        "auditor-token",
	}
}

func TestReferenceDeploymentLoads(t *testing.T) {
	cfg, err := Load("../../examples/pci.yaml", env(pciEnv()))
	if err != nil {
		t.Fatal(err)
	}
	shop := cfg.Connection("shop")
	if shop == nil {
		t.Fatal("no shop connection")
	}
	if got := shop.Role("reader").Password.Value(); got != "r-secret" {
		t.Errorf("reader password not resolved")
	}
	if !shop.Role("writer").Admits("ci-agent", []string{"agents"}) || shop.Role("writer").Admits("auditor", []string{"auditors"}) {
		t.Error("role admission wrong")
	}
	if cfg.Listeners.Postgres.Address != "127.0.0.1:15432" {
		t.Errorf("default listen address: got %q", cfg.Listeners.Postgres.Address)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("unexpected warnings: %v", cfg.Warnings)
	}
	if len(cfg.Hash) != 64 {
		t.Errorf("hash: %q", cfg.Hash)
	}
}

// minimalYAML is the smallest valid config (17 lines, with env TOK and PW):
// tests append the section they are about, so its errors are on line 18 on.
const minimalYAML = `data_dir: /tmp/x
listeners:
  postgres:
    address: 127.0.0.1:15432
identities:
  static:
    - name: a
      token: env:TOK
      groups: [agents]
connections:
  - name: shop
    address: 127.0.0.1:5432
    roles:
      - name: reader
        user: r
        password: env:PW
        groups: [agents]
`

func TestErrorsCarryFileAndLine(t *testing.T) {
	base := minimalYAML
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"ok", base, map[string]string{"TOK": "t", "PW": "p"}, nil},
		{"unknown key", strings.Replace(base, "    address: 127.0.0.1:5432", "    adress: 127.0.0.1:5432", 1), map[string]string{"TOK": "t", "PW": "p"},
			[]string{"c.yaml:12:", `unknown key "adress"`, `did you mean "address"?`}},
		{"secret env missing", base, map[string]string{"TOK": "t"},
			[]string{"c.yaml:16:", "connections[0].roles[0].password", "env PW is not set"}},
		{"variable missing", strings.Replace(base, "/tmp/x", "${DATA}", 1), map[string]string{"TOK": "t", "PW": "p"},
			[]string{"c.yaml:1:", "${DATA} is not set"}},
		{"bad action", base + "policy:\n  rules:\n    - name: r\n      when: 'true'\n      action: block\n", map[string]string{"TOK": "t", "PW": "p"},
			[]string{"c.yaml:22:", `unknown action "block"`}},
		{"bad duration", strings.Replace(base, "    address: 127.0.0.1:15432", "    address: 127.0.0.1:15432\n    idle_timeout: soon", 1), map[string]string{"TOK": "t", "PW": "p"},
			[]string{"c.yaml:5:"}},
		{"group nobody has", strings.Replace(base, "        groups: [agents]\n", "        groups: [admins]\n", 1), map[string]string{"TOK": "t", "PW": "p"},
			[]string{"c.yaml:17:", `no identity is in group "admins"`}},
		{"bad tls mode", strings.Replace(base, "    roles:", "    tls: {mode: prefer}\n    roles:", 1), map[string]string{"TOK": "t", "PW": "p"},
			[]string{"c.yaml:13:", `unknown mode "prefer"`}},
		{"syntax", base + "  - : :\n\t", map[string]string{}, []string{"c.yaml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml), env(tt.env))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestExpansionCannotInjectStructure(t *testing.T) {
	y := "data_dir: ${D}\nlisteners:\n  postgres:\n    address: 127.0.0.1:1\nconnections: []\n"
	_, err := Parse("c.yaml", []byte(y), env(map[string]string{"D": "x\nconnections:\n  - name: evil"}))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want config errors, got %v", err)
	}
	if strings.Contains(err.Error(), "evil") {
		t.Errorf("expanded value was parsed as YAML: %v", err)
	}
}

func TestSecretFileAndRedaction(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Secret{ref: "file:" + p}
	if err := s.Resolve(os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	if s.Value() != "s3cret" {
		t.Errorf("value %q", s.Value())
	}
	for _, f := range []string{"%v", "%s", "%+v", "%#v"} {
		if out := fmtSprintf(f, s); strings.Contains(out, "s3cret") {
			t.Errorf("%s leaks the secret: %s", f, out)
		}
	}
}

func TestExpandVars(t *testing.T) {
	get := func(k string) (string, bool) { v, ok := map[string]string{"A": "1", "E": ""}[k]; return v, ok }
	for in, want := range map[string]string{
		"x${A}y":    "x1y",
		"${B:-def}": "def",
		"${E:-def}": "def",
		"$${A}":     "${A}",
		"no vars":   "no vars",
		"${A}${A}":  "11",
	} {
		got, err := expandVars(in, get)
		if err != nil || got != want {
			t.Errorf("expandVars(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"${B}", "${", "${1X}"} {
		if _, err := expandVars(bad, get); err == nil {
			t.Errorf("expandVars(%q): want error", bad)
		}
	}
}
