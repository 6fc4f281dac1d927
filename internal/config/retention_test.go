package config

import (
	"strings"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	base := minimalYAML
	e := env(map[string]string{"TOK": "t", "PW": "p"})
	for _, tt := range []struct {
		name, yaml string
		audit, rec time.Duration
		want       []string // substrings of the error
	}{
		{"default keeps forever", base, 0, 0, nil},
		{"a year", base + "audit:\n  retention: 8784h\nrecordings:\n  retention: 2160h\n", 8784 * time.Hour, 2160 * time.Hour, nil},
		{"audit too short", base + "audit:\n  retention: 1h\n", 0, 0, []string{"c.yaml:19:", "audit.retention", "too short: 1h0m0s", "at least 24h"}},
		{"recordings negative", base + "recordings:\n  retention: -48h\n", 0, 0, []string{"recordings.retention", "negative"}},
		{"recordings unknown key", base + "recordings:\n  keep: 48h\n", 0, 0, []string{`unknown key "keep"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.yaml), e)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Audit.Retention != tt.audit || cfg.Recordings.Retention != tt.rec {
					t.Fatalf("retention = %s, %s; want %s, %s", cfg.Audit.Retention, cfg.Recordings.Retention, tt.audit, tt.rec)
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
