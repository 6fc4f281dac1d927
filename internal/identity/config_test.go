package identity_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
)

func TestNewRejectsBadConfig(t *testing.T) {
	issuer := func(edit func(*identity.OIDCIssuer)) identity.Config {
		c := identity.OIDCIssuer{
			Name:      "github",
			IssuerURL: "https://token.actions.githubusercontent.com",
			Audience:  audience,
			Mappings:  []identity.ClaimMapping{{Claims: map[string]string{"repository": "acme/shop"}, Groups: []string{"agents"}}},
		}
		edit(&c)
		return identity.Config{OIDC: []identity.OIDCIssuer{c}}
	}
	static := func(s ...identity.StaticIdentity) identity.Config { return identity.Config{Static: s} }
	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		cfg  identity.Config
		want string
	}{
		{"alg none", issuer(func(c *identity.OIDCIssuer) { c.Algorithms = []string{"RS256", "none"} }), `oidc[0].algorithms: "none" is not allowed`},
		{"alg HS256", issuer(func(c *identity.OIDCIssuer) { c.Algorithms = []string{"HS256"} }), `oidc[0].algorithms: "HS256" is not allowed`},
		{"alg hs512 lowercase", issuer(func(c *identity.OIDCIssuer) { c.Algorithms = []string{"hs512"} }), `oidc[0].algorithms: "hs512" is not allowed`},
		{"alg unknown", issuer(func(c *identity.OIDCIssuer) { c.Algorithms = []string{"RS1"} }), `oidc[0].algorithms: "RS1" is not a supported algorithm`},
		{"issuer without name", issuer(func(c *identity.OIDCIssuer) { c.Name = "" }), `oidc[0].name: is empty`},
		{"issuer named static", issuer(func(c *identity.OIDCIssuer) { c.Name = "static" }), `oidc[0].name: "static" is reserved`},
		{"no issuer url", issuer(func(c *identity.OIDCIssuer) { c.IssuerURL = "" }), `oidc[0].issuer_url: is empty`},
		{"plain http", issuer(func(c *identity.OIDCIssuer) { c.IssuerURL = "http://issuer.example.com" }), `oidc[0].issuer_url: "http://issuer.example.com" must use https`},
		{"no audience", issuer(func(c *identity.OIDCIssuer) { c.Audience = "" }), `oidc[0].audience: is empty`},
		{"no mappings", issuer(func(c *identity.OIDCIssuer) { c.Mappings = nil }), `oidc[0].mappings: at least one mapping is required`},
		{"mapping without claims", issuer(func(c *identity.OIDCIssuer) {
			c.Mappings = []identity.ClaimMapping{{Groups: []string{"agents"}}}
		}), `oidc[0].mappings[0].claims: at least one claim is required`},
		{"mapping without groups", issuer(func(c *identity.OIDCIssuer) {
			c.Mappings = []identity.ClaimMapping{{Claims: map[string]string{"sub": "x"}}}
		}), `oidc[0].mappings[0].groups: at least one group is required`},
		{"mapping with empty value", issuer(func(c *identity.OIDCIssuer) {
			c.Mappings = []identity.ClaimMapping{{Claims: map[string]string{"ref": ""}, Groups: []string{"agents"}}}
		}), `oidc[0].mappings[0].claims.ref: value is empty`},
		{"ca file missing", issuer(func(c *identity.OIDCIssuer) { c.CAFile = "/nonexistent/ca.pem" }), `oidc[0].ca_file: open /nonexistent/ca.pem`},
		{"ca file without certificates", issuer(func(c *identity.OIDCIssuer) { c.CAFile = noPEM }), `oidc[0].ca_file: ` + noPEM + ` contains no PEM certificates`},
		{"ca file and client", issuer(func(c *identity.OIDCIssuer) { c.CAFile = noPEM; c.HTTPClient = &http.Client{} }), `oidc[0].ca_file: cannot be combined`},
		{"duplicate issuer names", identity.Config{OIDC: []identity.OIDCIssuer{
			issuer(func(*identity.OIDCIssuer) {}).OIDC[0],
			issuer(func(c *identity.OIDCIssuer) { c.IssuerURL = "https://gitlab.example.com" }).OIDC[0],
		}}, `oidc[1].name: "github" is already used by oidc[0]`},
		{"duplicate issuer urls", identity.Config{OIDC: []identity.OIDCIssuer{
			issuer(func(*identity.OIDCIssuer) {}).OIDC[0],
			issuer(func(c *identity.OIDCIssuer) { c.Name = "github2" }).OIDC[0],
		}}, `oidc[1].issuer_url: "https://token.actions.githubusercontent.com" is already used by oidc[0]`},
		{"static empty token", static(identity.StaticIdentity{Name: "a"}), `static[0].token: is empty`},
		{"static empty name", static(identity.StaticIdentity{Token: "t0123456789"}), `static[0].name: is empty`},
		{"static whitespace", static(identity.StaticIdentity{Name: "a", Token: "secret\n"}), `static[0].token: has leading or trailing whitespace`},
		{"static duplicate token", static(
			identity.StaticIdentity{Name: "a", Token: "same-secret"},
			identity.StaticIdentity{Name: "b", Token: "same-secret"},
		), `static[1].token: is the same as static[0].token`},
		{"static duplicate name", static(
			identity.StaticIdentity{Name: "a", Token: "one-secret"},
			identity.StaticIdentity{Name: "a", Token: "two-secret"},
		), `static[1].name: "a" is already used by static[0]`},
		{"static empty group", static(identity.StaticIdentity{Name: "a", Token: "s3cret-token", Groups: []string{""}}), `static[0].groups[0]: is empty`},
		{"skew too large", identity.Config{MaxSkew: 2 * time.Minute}, `max_skew: 2m0s exceeds the maximum of 1m0s`},
		{"skew negative", identity.Config{MaxSkew: -time.Second}, `max_skew: -1s is negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := identity.New(context.Background(), tt.cfg, nil)
			if err == nil {
				t.Fatalf("New succeeded (%v), want error containing %q", v, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tt.want)
			}
			for _, s := range tt.cfg.Static {
				if s.Token != "" && strings.Contains(err.Error(), s.Token) {
					t.Fatalf("error reveals a static token: %q", err)
				}
			}
		})
	}
}

func TestNewAcceptsDefaults(t *testing.T) {
	cfg := identity.Config{
		Static: []identity.StaticIdentity{{Name: "ci-agent", Token: "s3cret", Groups: []string{"agents"}}},
		OIDC: []identity.OIDCIssuer{{
			Name:       "local",
			IssuerURL:  "http://127.0.0.1:1", // loopback may be plain http
			Audience:   audience,
			Algorithms: []string{"ES256", "EdDSA"},
			Mappings:   []identity.ClaimMapping{{Claims: map[string]string{"sub": "x"}, Groups: []string{"g"}}},
		}},
		MaxSkew: 60 * time.Second,
	}
	if _, err := identity.New(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.New(context.Background(), identity.Config{}, nil); err != nil {
		t.Fatalf("empty config: %v", err)
	}
}
