package identity_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/identity/identitytest"
)

const (
	audience  = "gatehouse"
	ghSubject = "repo:acme/shop:ref:refs/heads/main"
)

// syncBuffer collects log output from concurrent verifications.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// githubIssuer configures iss the way examples/pci.yaml configures GitHub
// Actions, plus a second mapping on a list claim to exercise group unions.
func githubIssuer(name string, iss *identitytest.Issuer) identity.OIDCIssuer {
	return identity.OIDCIssuer{
		Name:      name,
		IssuerURL: iss.URL(),
		Audience:  audience,
		Mappings: []identity.ClaimMapping{
			{Claims: map[string]string{"repository": "acme/shop", "ref": "refs/heads/main"}, Groups: []string{"agents"}},
			{Claims: map[string]string{"teams": "dba"}, Groups: []string{"dba", "agents"}},
		},
	}
}

// githubClaims is the shape of a GitHub Actions token for acme/shop on main.
func githubClaims(iss *identitytest.Issuer) map[string]any {
	c := iss.Claims(ghSubject, audience)
	c["repository"] = "acme/shop"
	c["ref"] = "refs/heads/main"
	c["repository_owner"] = "acme"
	return c
}

func newVerifier(t *testing.T, cfg identity.Config) (*identity.Verifier, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := identity.New(context.Background(), cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v, logs
}

// checkRejected asserts err is a *TokenError with reason want, and that
// neither the error text nor the logs reveal the token or any segment of it.
func checkRejected(t *testing.T, err error, want identity.Reason, token string, logs *syncBuffer) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded, want %s", want)
	}
	var te *identity.TokenError
	if !errors.As(err, &te) || !identity.IsTokenError(err) {
		t.Fatalf("Verify error %T %v is not a *TokenError", err, err)
	}
	if te.Reason != want {
		t.Fatalf("reason = %s, want %s (error: %v)", te.Reason, want, err)
	}
	t.Logf("rejected: %v", err)
	checkNoLeak(t, err.Error(), token, "error text")
	if logs != nil {
		checkNoLeak(t, logs.String(), token, "logs")
	}
}

func checkNoLeak(t *testing.T, text, token, where string) {
	t.Helper()
	if token == "" {
		return
	}
	if strings.Contains(text, token) {
		t.Fatalf("%s contains the token: %s", where, text)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(text, seg) {
			t.Fatalf("%s contains a token segment %q: %s", where, seg, text)
		}
	}
}

func TestStatic(t *testing.T) {
	v, logs := newVerifier(t, identity.Config{Static: []identity.StaticIdentity{
		{Name: "ci-agent", Token: "agent-secret-0123456789", Groups: []string{"agents"}},
		{Name: "approver", Token: "approver-secret-0123456789", Groups: []string{"security"}},
	}})
	tests := []struct {
		name      string
		token     string
		wantName  string
		wantGroup string
		reason    identity.Reason
	}{
		{name: "first", token: "agent-secret-0123456789", wantName: "ci-agent", wantGroup: "agents"},
		{name: "second", token: "approver-secret-0123456789", wantName: "approver", wantGroup: "security"},
		{name: "mismatch", token: "agent-secret-0123456788", reason: identity.ReasonUnknownToken},
		{name: "prefix", token: "agent-secret", reason: identity.ReasonUnknownToken},
		{name: "longer", token: "agent-secret-0123456789x", reason: identity.ReasonUnknownToken},
		{name: "trailing newline", token: "agent-secret-0123456789\n", reason: identity.ReasonUnknownToken},
		{name: "empty", token: "", reason: identity.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token)
			if tt.reason != 0 {
				checkRejected(t, err, tt.reason, tt.token, logs)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Issuer != identity.StaticIssuer || p.Subject != tt.wantName || p.Name != tt.wantName {
				t.Errorf("principal = %+v, want static %s", p, tt.wantName)
			}
			if !p.InGroup(tt.wantGroup) || len(p.Groups) != 1 {
				t.Errorf("groups = %v, want [%s]", p.Groups, tt.wantGroup)
			}
		})
	}
	t.Run("principal is a copy", func(t *testing.T) {
		p, err := v.Verify(context.Background(), "agent-secret-0123456789")
		if err != nil {
			t.Fatal(err)
		}
		p.Groups[0] = "security"
		p, err = v.Verify(context.Background(), "agent-secret-0123456789")
		if err != nil {
			t.Fatal(err)
		}
		if p.Groups[0] != "agents" {
			t.Fatalf("mutating a returned principal changed the verifier: %v", p.Groups)
		}
	})
}

func TestOIDC(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	other := identitytest.NewIssuer(t)
	v, logs := newVerifier(t, identity.Config{
		OIDC:    []identity.OIDCIssuer{githubIssuer("github", iss), githubIssuer("other", other)},
		MaxSkew: 60 * time.Second,
	})
	now := time.Now()
	with := func(edit func(c map[string]any)) map[string]any {
		c := githubClaims(iss)
		edit(c)
		return c
	}
	tests := []struct {
		name   string
		token  func() string
		reason identity.Reason // zero: must verify
		groups []string
		issuer string // TokenError.Issuer on rejection
	}{
		{name: "github actions shape", token: func() string { return iss.Sign(githubClaims(iss)) }, groups: []string{"agents"}},
		{name: "ES256", token: func() string { return iss.SignWith("ES256", githubClaims(iss)) }, groups: []string{"agents"}},
		{name: "audience list", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["aud"] = []string{"other", audience} }))
		}, groups: []string{"agents"}},
		{name: "list claim and union of groups", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["teams"] = []string{"web", "dba"} }))
		}, groups: []string{"agents", "dba"}},
		{name: "list claim alone", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["ref"] = "refs/heads/dev"; c["teams"] = []string{"dba"} }))
		}, groups: []string{"agents", "dba"}},
		{name: "exp within skew", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }))
		}, groups: []string{"agents"}},
		{name: "nbf within skew", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["nbf"] = now.Add(30 * time.Second).Unix() }))
		}, groups: []string{"agents"}},
		{name: "no nbf no iat", token: func() string {
			return iss.Sign(with(func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") }))
		}, groups: []string{"agents"}},
		{name: "second issuer", token: func() string {
			c := githubClaims(other)
			return other.Sign(c)
		}, groups: []string{"agents"}},

		{name: "expired", reason: identity.ReasonExpired, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["exp"] = now.Add(-90 * time.Second).Unix() }))
		}},
		{name: "exp missing", reason: identity.ReasonMalformed, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { delete(c, "exp") }))
		}},
		{name: "exp not a number", reason: identity.ReasonMalformed, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["exp"] = "tomorrow" }))
		}},
		{name: "exp absurdly far", reason: identity.ReasonMalformed, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["exp"] = 1e300 }))
		}},
		{name: "nbf beyond skew", reason: identity.ReasonNotYetValid, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() }))
		}},
		{name: "iat beyond skew", reason: identity.ReasonNotYetValid, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }))
		}},
		{name: "wrong audience", reason: identity.ReasonWrongAudience, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["aud"] = "sigstore" }))
		}},
		{name: "no audience", reason: identity.ReasonWrongAudience, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { delete(c, "aud") }))
		}},
		{name: "unknown issuer", reason: identity.ReasonUnknownIssuer, token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["iss"] = "https://token.actions.example.com" }))
		}},
		{name: "issuer with trailing slash", reason: identity.ReasonUnknownIssuer, token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["iss"] = iss.URL() + "/" }))
		}},
		{name: "no iss", reason: identity.ReasonMalformed, token: func() string {
			return iss.Sign(with(func(c map[string]any) { delete(c, "iss") }))
		}},
		{name: "foreign key", reason: identity.ReasonBadSignature, issuer: "github", token: func() string {
			return iss.SignForeign(githubClaims(iss))
		}},
		{name: "other issuer's key claiming our iss", reason: identity.ReasonBadSignature, issuer: "github", token: func() string {
			return other.Sign(githubClaims(iss))
		}},
		{name: "tampered claims", reason: identity.ReasonBadSignature, issuer: "github", token: func() string {
			good := strings.Split(iss.Sign(githubClaims(iss)), ".")
			forged := strings.Split(iss.SignForeign(with(func(c map[string]any) { c["repository"] = "acme/shop"; c["sub"] = "admin" })), ".")
			return good[0] + "." + forged[1] + "." + good[2]
		}},
		{name: "alg none", reason: identity.ReasonBadAlgorithm, issuer: "github", token: func() string {
			return iss.SignWith("none", githubClaims(iss))
		}},
		{name: "HS256 with the public key as secret", reason: identity.ReasonBadAlgorithm, issuer: "github", token: func() string {
			return iss.SignWith("HS256", githubClaims(iss))
		}},
		{name: "alg not configured", reason: identity.ReasonBadAlgorithm, issuer: "github", token: func() string {
			return iss.SignWith("RS384", githubClaims(iss))
		}},
		{name: "no mapping matches", reason: identity.ReasonNoMapping, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["repository"] = "evil/shop" }))
		}},
		{name: "mapping needs every claim", reason: identity.ReasonNoMapping, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { delete(c, "ref") }))
		}},
		{name: "non-string claim never matches", reason: identity.ReasonNoMapping, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { c["ref"] = 42; c["teams"] = map[string]any{"dba": true} }))
		}},
		{name: "no sub", reason: identity.ReasonMalformed, issuer: "github", token: func() string {
			return iss.Sign(with(func(c map[string]any) { delete(c, "sub") }))
		}},
		{name: "not a JWT", reason: identity.ReasonUnknownToken, token: func() string { return "not-a-token-at-all" }},
		{name: "JWT-shaped garbage", reason: identity.ReasonMalformed, token: func() string { return "abcdefghij.klmnopqrst.uvwxyz" }},
		{name: "claims not an object", reason: identity.ReasonMalformed, token: func() string {
			good := strings.Split(iss.Sign(githubClaims(iss)), ".")
			return good[0] + ".WzEsMiwzXQ." + good[2] // [1,2,3]
		}},
		{name: "four segments", reason: identity.ReasonUnknownToken, token: func() string { return iss.Sign(githubClaims(iss)) + ".x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token()
			p, err := v.Verify(context.Background(), token)
			if tt.reason != 0 {
				checkRejected(t, err, tt.reason, token, logs)
				var te *identity.TokenError
				errors.As(err, &te)
				if te.Issuer != tt.issuer {
					t.Errorf("TokenError.Issuer = %q, want %q", te.Issuer, tt.issuer)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(p.Groups, tt.groups) {
				t.Errorf("groups = %v, want %v", p.Groups, tt.groups)
			}
			if p.Subject != ghSubject || p.Name != ghSubject {
				t.Errorf("subject, name = %q, %q; want %q", p.Subject, p.Name, ghSubject)
			}
			if p.Issuer != iss.URL() && p.Issuer != other.URL() {
				t.Errorf("issuer = %q", p.Issuer)
			}
			if p.Claims["repository"] != "acme/shop" {
				t.Errorf("claims = %v, want repository acme/shop", p.Claims)
			}
			checkNoLeak(t, logs.String(), token, "logs")
		})
	}
}

func TestNameClaim(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	cfg := githubIssuer("github", iss)
	cfg.NameClaim = "repository"
	v, logs := newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{cfg}})

	token := iss.Sign(githubClaims(iss))
	p, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "acme/shop" || p.Subject != ghSubject {
		t.Errorf("name, subject = %q, %q", p.Name, p.Subject)
	}
	checkNoLeak(t, logs.String(), token, "logs")

	cfg.NameClaim = "email"
	v, logs = newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{cfg}})
	token = iss.Sign(githubClaims(iss))
	_, err = v.Verify(context.Background(), token)
	checkRejected(t, err, identity.ReasonMalformed, token, logs)
}

// TestIssuerDown: an issuer that is down at startup neither blocks New nor
// the other issuers, fails fast, is not hammered, and is picked up again
// once it recovers.
func TestIssuerDown(t *testing.T) {
	down := identitytest.NewIssuer(t)
	healthy := identitytest.NewIssuer(t)
	down.SetDown(true)
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	v, logs := newVerifier(t, identity.Config{
		OIDC: []identity.OIDCIssuer{githubIssuer("down", down), githubIssuer("healthy", healthy)},
		Now:  clock,
	})
	if n := down.Requests() + healthy.Requests(); n != 0 {
		t.Fatalf("New contacted issuers %d times", n)
	}

	token := down.Sign(githubClaims(down))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := v.Verify(ctx, token)
	checkRejected(t, err, identity.ReasonIssuerUnavailable, token, logs)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("rejection took %s, want fast", d)
	}
	if !strings.Contains(err.Error(), "unavailable") || !strings.Contains(err.Error(), "503") {
		t.Errorf("error does not explain the outage: %v", err)
	}

	if _, err := v.Verify(ctx, healthy.Sign(githubClaims(healthy))); err != nil {
		t.Fatalf("healthy issuer: %v", err)
	}

	before := down.Requests()
	for range 20 {
		_, err := v.Verify(ctx, token)
		checkRejected(t, err, identity.ReasonIssuerUnavailable, token, logs)
	}
	if n := down.Requests() - before; n > 0 {
		t.Errorf("a down issuer got %d more requests within its backoff", n)
	}

	down.SetDown(false)
	offset.Store(int64(11 * time.Second)) // past the longest backoff
	p, err := v.Verify(ctx, token)
	if err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if !p.InGroup("agents") {
		t.Errorf("groups = %v", p.Groups)
	}
}

func TestStartupWithUnreachableIssuer(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	token := iss.Sign(githubClaims(iss))
	iss.Close() // nothing listens on its port any more
	v, logs := newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{githubIssuer("gone", iss)}})
	_, err := v.Verify(context.Background(), token)
	checkRejected(t, err, identity.ReasonIssuerUnavailable, token, logs)
}

// TestHangingIssuer: an issuer that accepts connections but never answers
// costs a connection no more than its context allows.
func TestHangingIssuer(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)

	signer := identitytest.NewIssuer(t)
	cfg := githubIssuer("hanging", signer)
	cfg.IssuerURL = hang.URL
	v, logs := newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{cfg}})
	claims := githubClaims(signer)
	claims["iss"] = hang.URL
	token := signer.Sign(claims)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.Verify(ctx, token)
	checkRejected(t, err, identity.ReasonIssuerUnavailable, token, logs)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify took %s despite a 200ms context", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap the context's: %v", err)
	}
}

// TestKeysOutliveOutage: once keys are known, an outage does not stop
// tokens signed with them.
func TestKeysOutliveOutage(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v, _ := newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{githubIssuer("github", iss)}})
	if _, err := v.Verify(context.Background(), iss.Sign(githubClaims(iss))); err != nil {
		t.Fatal(err)
	}
	iss.SetDown(true)
	if _, err := v.Verify(context.Background(), iss.Sign(githubClaims(iss))); err != nil {
		t.Fatalf("with cached keys during an outage: %v", err)
	}
}

// TestForgeriesDoNotHammerIssuer: go-oidc refetches keys on every signature
// it cannot verify; forged tokens must not become a request each.
func TestForgeriesDoNotHammerIssuer(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v, logs := newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{githubIssuer("github", iss)}})
	if _, err := v.Verify(context.Background(), iss.Sign(githubClaims(iss))); err != nil {
		t.Fatal(err)
	}
	before := iss.Requests()
	for range 20 {
		token := iss.SignForeign(githubClaims(iss))
		_, err := v.Verify(context.Background(), token)
		checkRejected(t, err, identity.ReasonBadSignature, token, logs)
	}
	if n := iss.Requests() - before; n > 1 {
		t.Errorf("20 forged tokens caused %d requests to the issuer", n)
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v, _ := newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{githubIssuer("github", iss)}})
	token := iss.Sign(githubClaims(iss))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), token)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := iss.Requests(); n > 2 {
		t.Errorf("16 concurrent first uses made %d requests, want discovery and keys once", n)
	}
}

func TestReasonLabels(t *testing.T) {
	seen := map[string]identity.Reason{}
	for r := identity.ReasonUnknownToken; r <= identity.ReasonNoMapping; r++ {
		label := r.String()
		if label == "" || strings.ToLower(label) != label || strings.ContainsAny(label, " -") {
			t.Errorf("%d: label %q is not snake_case", r, label)
		}
		if prev, ok := seen[label]; ok {
			t.Errorf("%d and %d share label %q", prev, r, label)
		}
		seen[label] = r
	}
	if got := identity.ReasonIssuerUnavailable.String(); got != "issuer_unavailable" {
		t.Errorf("ReasonIssuerUnavailable = %q", got)
	}
}

// TestKeyFetchFailure: when the signature fails against cached keys and the
// issuer cannot be asked for new ones, the verdict is issuer_unavailable,
// not bad_signature: the keys may simply have rotated.
func TestKeyFetchFailure(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	v, logs := newVerifier(t, identity.Config{OIDC: []identity.OIDCIssuer{githubIssuer("github", iss)}, Now: clock})
	if _, err := v.Verify(context.Background(), iss.Sign(githubClaims(iss))); err != nil {
		t.Fatal(err)
	}
	iss.SetDown(true)
	offset.Store(int64(6 * time.Second)) // past the reuse of the last key set
	token := iss.SignForeign(githubClaims(iss))
	_, err := v.Verify(context.Background(), token)
	checkRejected(t, err, identity.ReasonIssuerUnavailable, token, logs)
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error does not say why: %v", err)
	}
}
