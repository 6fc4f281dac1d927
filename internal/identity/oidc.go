package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// maxTokenLen bounds the work done on a token before its signature is known
// to be good. Real OIDC tokens are 1–4 KiB.
const maxTokenLen = 32 << 10

// issuer verifies the tokens of one OIDC issuer.
type issuer struct {
	settings  issuerSettings
	transport *issuerTransport
	client    *http.Client
	now       func() time.Time
	skew      time.Duration
	logger    *slog.Logger

	mu          sync.Mutex            // guards the fields below
	idv         *oidc.IDTokenVerifier // nil until discovery succeeds
	discovering chan struct{}         // closed when the discovery in progress ends
}

func newIssuer(s issuerSettings, now func() time.Time, skew time.Duration, logger *slog.Logger) *issuer {
	logger = logger.With(slog.String("issuer", s.name), slog.String("issuer_url", s.url))
	next := s.client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	tr := &issuerTransport{next: next, now: now, logger: logger}
	client := *s.client
	client.Transport = tr
	return &issuer{settings: s, transport: tr, client: &client, now: now, skew: skew, logger: logger}
}

// verifier returns the go-oidc verifier, discovering the issuer on first
// use. Only one discovery runs at a time; the others wait for it (or for
// their ctx) and then look again, so a failed discovery is retried by the
// next caller, whom the transport answers from memory while it backs off.
func (is *issuer) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	for {
		is.mu.Lock()
		if is.idv != nil {
			idv := is.idv
			is.mu.Unlock()
			return idv, nil
		}
		if wait := is.discovering; wait != nil {
			is.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		is.discovering = done
		is.mu.Unlock()

		idv, err := is.discover(ctx)

		is.mu.Lock()
		is.discovering = nil
		is.idv = idv
		is.mu.Unlock()
		close(done)
		return idv, err
	}
}

func (is *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, is.client), is.settings.url)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	// The key set is as much a root of trust as the issuer URL, so it gets
	// the same scheme rule: no https issuer handing out http keys.
	if err := checkJWKSURL(meta.JWKSURL, is.settings.url); err != nil {
		return nil, fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	// The key set keeps this context for its background fetches; only its
	// values (the client) matter, and it must outlive the first caller.
	keys := &keySet{
		remote:    oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), is.client), meta.JWKSURL),
		transport: is.transport,
		now:       is.now,
	}
	is.logger.Info("oidc issuer discovered", slog.String("jwks_url", meta.JWKSURL))
	return oidc.NewVerifier(is.settings.url, keys, &oidc.Config{
		ClientID:             is.settings.audience,
		SupportedSigningAlgs: is.settings.algorithms,
		// Expiry, nbf and iat are checked by checkTimes: go-oidc allows no
		// skew on exp and a fixed five minutes on nbf, and accepts a missing
		// exp as merely "expired".
		SkipExpiryCheck: true,
	}), nil
}

func checkJWKSURL(raw, issuerURL string) error {
	if raw == "" {
		return errors.New("is missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme == "https" {
		return nil
	}
	iu, _ := url.Parse(issuerURL)
	if u.Scheme == "http" && iu != nil && iu.Scheme == "http" && isLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%q must use https", u.Redacted())
}

// keySet wraps go-oidc's remote key set (which does the caching and the
// refetch on an unknown key) to record why verification failed: go-oidc
// reports key set errors as text, and "the issuer is down" must not be
// confused with "the signature is forged".
type keySet struct {
	remote    *oidc.RemoteKeySet
	transport *issuerTransport
	now       func() time.Time
}

type sigOutcomeKey struct{}

// sigOutcome travels in the context of one verification.
type sigOutcome struct {
	called      bool
	err         error
	unavailable bool
}

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	start := k.now()
	payload, err := k.remote.VerifySignature(ctx, jwt)
	if o, ok := ctx.Value(sigOutcomeKey{}).(*sigOutcome); ok {
		o.called = true
		o.err = err
		o.unavailable = err != nil && (isUnavailable(err) || k.transport.failedSince(start))
	}
	return payload, err
}

func isTransportError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// jwtParts is what is read from a token before its signature is checked:
// only enough to choose an issuer and refuse bad algorithms early.
type jwtParts struct {
	alg    string
	claims map[string]any
}

// looksLikeJWT reports whether token is a JWS in compact form: three
// base64url segments, of which the signature may be empty (alg "none").
func looksLikeJWT(token string) bool {
	if len(token) > maxTokenLen {
		return false
	}
	parts := 0
	segLen := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '.':
			if segLen == 0 {
				return false
			}
			parts++
			segLen = 0
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			segLen++
		default:
			return false
		}
	}
	return parts == 2
}

// parseUnverified decodes the header and claims of a token that passed
// looksLikeJWT. Errors are fixed texts: decoder messages can quote bytes
// of the token.
func parseUnverified(token string) (jwtParts, error) {
	var p jwtParts
	h, rest, _ := strings.Cut(token, ".")
	c, _, _ := strings.Cut(rest, ".")
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return p, errors.New("header is not valid base64url")
	}
	var header struct {
		Alg any `json:"alg"`
	}
	if err := json.Unmarshal(hb, &header); err != nil {
		return p, errors.New("header is not a JSON object")
	}
	alg, ok := header.Alg.(string)
	if !ok || alg == "" {
		return p, errors.New("header has no alg")
	}
	p.alg = alg
	cb, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return p, errors.New("claims are not valid base64url")
	}
	if err := json.Unmarshal(cb, &p.claims); err != nil || p.claims == nil {
		return p, errors.New("claims are not a JSON object")
	}
	return p, nil
}

// knownAlgorithms are the JOSE algorithm names an error may quote; any
// other alg header is attacker-chosen text and is not echoed.
var knownAlgorithms = map[string]bool{
	"none": true, "HS256": true, "HS384": true, "HS512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"ES256": true, "ES384": true, "ES512": true, "ES256K": true,
	"PS256": true, "PS384": true, "PS512": true, "EdDSA": true,
}

func (is *issuer) verify(ctx context.Context, token string, parts jwtParts) (*Principal, error) {
	name := is.settings.name
	if !slices.Contains(is.settings.algorithms, parts.alg) {
		if knownAlgorithms[parts.alg] {
			return nil, tokenErr(ReasonBadAlgorithm, name, fmt.Errorf("algorithm %q is not allowed (allowed: %s)", parts.alg, strings.Join(is.settings.algorithms, ", ")))
		}
		return nil, tokenErr(ReasonBadAlgorithm, name, fmt.Errorf("unsupported algorithm (allowed: %s)", strings.Join(is.settings.algorithms, ", ")))
	}
	idv, err := is.verifier(ctx)
	if err != nil {
		return nil, tokenErr(ReasonIssuerUnavailable, name, err)
	}

	outcome := &sigOutcome{}
	idt, err := idv.Verify(context.WithValue(ctx, sigOutcomeKey{}, outcome), token)
	switch {
	case err == nil:
	case outcome.unavailable:
		return nil, tokenErr(ReasonIssuerUnavailable, name, outcome.err)
	case ctx.Err() != nil:
		return nil, tokenErr(ReasonIssuerUnavailable, name, fmt.Errorf("verification abandoned: %w", ctx.Err()))
	case !outcome.called:
		// go-oidc refused to parse what looked like a JWS; its message may
		// quote the token, so it is not passed on.
		return nil, tokenErr(ReasonMalformed, name, errors.New("not a valid JWS"))
	case outcome.err != nil:
		return nil, tokenErr(ReasonBadSignature, name, errors.New("signature does not verify with any of the issuer's keys"))
	default:
		// The signature is good, so the unverified claims are the verified
		// ones; what go-oidc objected to is among the claims it checks.
		if !audienceContains(parts.claims["aud"], is.settings.audience) {
			return nil, tokenErr(ReasonWrongAudience, name, fmt.Errorf("audience does not include %q", is.settings.audience))
		}
		return nil, tokenErr(ReasonMalformed, name, errors.New("claims could not be decoded (iss, aud, exp, iat and nbf must have their standard types)"))
	}

	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, tokenErr(ReasonMalformed, name, errors.New("claims are not a JSON object"))
	}
	if err := checkTimes(claims, is.now(), is.skew); err != nil {
		return nil, err.withIssuer(name)
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, tokenErr(ReasonMalformed, name, errors.New("sub claim is missing or not a string"))
	}
	display, _ := claims[is.settings.nameClaim].(string)
	if display == "" {
		return nil, tokenErr(ReasonMalformed, name, fmt.Errorf("name claim %q is missing or not a string", is.settings.nameClaim))
	}
	groups := is.groups(claims)
	if len(groups) == 0 {
		return nil, tokenErr(ReasonNoMapping, name, errors.New("claims match no configured mapping"))
	}
	return &Principal{
		Issuer:  idt.Issuer,
		Subject: sub,
		Name:    display,
		Groups:  groups,
		Claims:  claims,
	}, nil
}

func audienceContains(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// timeError carries a reason until the issuer's name is known.
type timeError struct {
	reason Reason
	err    error
}

func (e *timeError) withIssuer(name string) *TokenError { return tokenErr(e.reason, name, e.err) }

// checkTimes requires exp and applies skew symmetrically: a token is
// accepted until exp+skew, and from nbf-skew and iat-skew. Errors give
// distances, not timestamps, which is what an operator chasing clock skew
// needs.
func checkTimes(claims map[string]any, now time.Time, skew time.Duration) *timeError {
	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return &timeError{ReasonMalformed, err}
	}
	if !ok {
		return &timeError{ReasonMalformed, errors.New("exp claim is required")}
	}
	if now.After(exp.Add(skew)) {
		return &timeError{ReasonExpired, fmt.Errorf("expired %s ago (allowed skew %s)", now.Sub(exp).Round(time.Second), skew)}
	}
	for _, c := range []string{"nbf", "iat"} {
		t, ok, err := numericDate(claims, c)
		if err != nil {
			return &timeError{ReasonMalformed, err}
		}
		if ok && t.After(now.Add(skew)) {
			return &timeError{ReasonNotYetValid, fmt.Errorf("%s is %s in the future (allowed skew %s)", c, t.Sub(now).Round(time.Second), skew)}
		}
	}
	return nil
}

// maxNumericDate is 9999-12-31T23:59:59Z; beyond it a float-to-int
// conversion would no longer be meaningful.
const maxNumericDate = 253402300799

func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, present := claims[name]
	if !present {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("%s claim is not a valid NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// groups is the sorted union of the groups of every matching mapping.
func (is *issuer) groups(claims map[string]any) []string {
	var out []string
	for _, m := range is.settings.mappings {
		if matches(m, claims) {
			out = append(out, m.Groups...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func matches(m ClaimMapping, claims map[string]any) bool {
	for k, want := range m.Claims {
		switch v := claims[k].(type) {
		case string:
			if v != want {
				return false
			}
		case []any:
			if !slices.ContainsFunc(v, func(e any) bool { s, ok := e.(string); return ok && s == want }) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
