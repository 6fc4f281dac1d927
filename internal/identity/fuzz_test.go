package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/identity/identitytest"
)

// FuzzVerify: no token string, however hostile, panics the verifier or
// yields anything but a principal or a *TokenError.
func FuzzVerify(f *testing.F) {
	iss := identitytest.NewIssuer(f)
	cfg := identity.Config{
		Static: []identity.StaticIdentity{{Name: "ci-agent", Token: "agent-secret", Groups: []string{"agents"}}},
		OIDC:   []identity.OIDCIssuer{githubIssuer("github", iss)},
	}
	v, err := identity.New(context.Background(), cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	good := iss.Sign(githubClaims(iss))
	parts := strings.Split(good, ".")
	for _, seed := range []string{
		"",
		"agent-secret",
		good,
		iss.SignWith("ES256", githubClaims(iss)),
		iss.SignWith("none", githubClaims(iss)),
		iss.SignWith("HS256", githubClaims(iss)),
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"..",
		"a.b.c",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2ln",      // {"alg":"RS256"} . {}
		"eyJhbGciOm51bGx9.eyJpc3MiOjF9.c2ln", // alg null, iss number
		"eyJhbGciOiJub25lIn0.eyJleHAiOjFlOTk5OX0.", // exp 1e9999
		strings.Repeat("A", 40000) + ".e30.c2ln",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), token)
		if err != nil {
			var te *identity.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error %T is not a *TokenError: %v", err, err)
			}
			if te.Reason.String() == "unspecified" {
				t.Fatalf("TokenError without a reason: %v", err)
			}
			if p != nil {
				t.Fatalf("both a principal and an error")
			}
			return
		}
		if p == nil || p.Name == "" || len(p.Groups) == 0 {
			t.Fatalf("accepted token yields incomplete principal %+v", p)
		}
	})
}
