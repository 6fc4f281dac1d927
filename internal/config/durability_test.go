package config

import (
	"strings"
	"testing"
)

func TestAuditDurability(t *testing.T) {
	base := minimalYAML
	e := env(map[string]string{"TOK": "t", "PW": "p", "DSN": "postgres://x"})
	for _, tt := range []struct {
		name, yaml string
		want       string   // the parsed value
		errs       []string // substrings of the error
	}{
		{"default is fsync", base, DurabilityFsync, nil},
		{"write on sqlite", base + "audit:\n  durability: write\n", DurabilityWrite, nil},
		{"unknown", base + "audit:\n  durability: eventually\n", "", []string{"c.yaml:19:", "audit.durability", `unknown value "eventually"`, "fsync"}},
		{"write on postgres", base + "store:\n  driver: postgres\n  dsn: env:DSN\naudit:\n  durability: write\n", "",
			[]string{"c.yaml:22:", "audit.durability", "SQLite store only"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.yaml), e)
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Audit.Durability != tt.want {
					t.Fatalf("durability = %q, want %q", cfg.Audit.Durability, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
