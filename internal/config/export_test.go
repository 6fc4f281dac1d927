package config

import (
	"strings"
	"testing"
	"time"
)

func TestAuditExport(t *testing.T) {
	base := minimalYAML + "audit:\n  export:\n"
	e := env(map[string]string{"TOK": "t", "PW": "p", "SIEM_SECRET": "hmac-key"})

	t.Run("defaults", func(t *testing.T) {
		y := base + `    - name: siem
      url: https://siem.example/in
      secret: env:SIEM_SECRET
    - name: archive.ocsf
      url: http://127.0.0.1:9000/ocsf
      format: ocsf
      batch_size: 50
      interval: 250ms
      timeout: 3s
`
		cfg, err := Parse("c.yaml", []byte(y), e)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("warnings: %v", cfg.Warnings)
		}
		got := cfg.Audit.Export
		if len(got) != 2 {
			t.Fatalf("export = %+v", got)
		}
		if s := got[0]; s.Format != "jsonl" || s.BatchSize != 500 || s.Interval != 2*time.Second || s.Timeout != 10*time.Second ||
			s.Secret.Value() != "hmac-key" {
			t.Errorf("defaults not applied: %+v", s)
		}
		if s := got[1]; s.Format != "ocsf" || s.BatchSize != 50 || s.Interval != 250*time.Millisecond || s.Timeout != 3*time.Second ||
			s.Secret.Value() != "" {
			t.Errorf("explicit values: %+v", s)
		}
	})

	sink := func(extra string) string {
		return base + "    - name: siem\n      url: https://siem.example/in\n" + extra
	}
	for _, tt := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"duplicate name", sink("    - name: siem\n      url: https://other.example/\n"),
			[]string{"c.yaml:22:", "audit.export[1].name", `name "siem" is also used at audit.export[0]`}},
		{"no name", base + "    - url: https://siem.example/in\n",
			[]string{"c.yaml:20:", "audit.export[0].name", "is required"}},
		{"bad name", base + "    - name: my siem\n      url: https://siem.example/in\n",
			[]string{"c.yaml:20:", "audit.export[0].name", `bad name "my siem"`}},
		{"no url", base + "    - name: siem\n",
			[]string{"c.yaml:20:", "audit.export[0].url", "is required"}},
		{"not http", base + "    - name: siem\n      url: ftp://siem.example/token-abc\n",
			[]string{"c.yaml:21:", "audit.export[0].url", "not an http or https URL"}},
		{"unknown format", sink("      format: cef\n"),
			[]string{"c.yaml:22:", "audit.export[0].format", `unknown format "cef"`, "jsonl or ocsf"}},
		{"batch too big", sink("      batch_size: 20000\n"),
			[]string{"c.yaml:22:", "audit.export[0].batch_size", "out of range: 20000"}},
		{"batch negative", sink("      batch_size: -1\n"),
			[]string{"audit.export[0].batch_size", "out of range: -1"}},
		{"interval too short", sink("      interval: 10ms\n"),
			[]string{"c.yaml:22:", "audit.export[0].interval", "out of range: 10ms"}},
		{"timeout too long", sink("      timeout: 1h\n"),
			[]string{"c.yaml:22:", "audit.export[0].timeout", "out of range: 1h0m0s"}},
		{"secret not set", sink("      secret: env:NOPE\n"),
			[]string{"c.yaml:22:", "audit.export[0].secret", "env NOPE is not set"}},
		{"unknown key", sink("      batchsize: 10\n"),
			[]string{"c.yaml:22:", `unknown key "batchsize"`, `did you mean "batch_size"?`}},
		{"not a list", base + "    name: siem\n",
			[]string{"c.yaml:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml), e)
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "token-abc") {
				t.Errorf("error %q quotes the URL's path", err)
			}
		})
	}

	t.Run("plain http elsewhere warns", func(t *testing.T) {
		cfg, err := Parse("c.yaml", []byte(base+"    - name: siem\n      url: http://siem.example/in?token=abc\n"), e)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "c.yaml:21: audit.export[0].url") ||
			!strings.Contains(cfg.Warnings[0], "unencrypted") || strings.Contains(cfg.Warnings[0], "token") {
			t.Errorf("warnings = %q", cfg.Warnings)
		}
	})
}
