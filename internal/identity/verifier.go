package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Verifier turns bearer tokens into principals. It is safe for concurrent
// use. It starts no long-lived goroutines (go-oidc's key refreshes end within
// the issuer HTTP timeout), so it needs no shutdown.
type Verifier struct {
	static  []staticEntry
	issuers map[string]*issuer // by issuer URL, which must equal iss exactly
}

// New validates cfg and returns a Verifier. It does not contact any issuer:
// each is discovered on the first token that names it, so an unreachable
// issuer delays neither startup nor the other issuers. Errors name the
// offending field, as in `oidc[0].algorithms: "none" is not allowed`.
// ctx is unused today, deliberately: construction does no network I/O. A nil
// logger discards.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Verifier, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	skew := cfg.MaxSkew
	switch {
	case skew < 0:
		return nil, fmt.Errorf("max_skew: %s is negative", skew)
	case skew == 0:
		skew = maxSkewLimit
	case skew > maxSkewLimit:
		return nil, fmt.Errorf("max_skew: %s exceeds the maximum of %s", skew, maxSkewLimit)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	static, err := validateStatic(cfg.Static)
	if err != nil {
		return nil, err
	}
	settings, err := validateIssuers(cfg.OIDC)
	if err != nil {
		return nil, err
	}
	v := &Verifier{static: static, issuers: make(map[string]*issuer, len(settings))}
	for _, s := range settings {
		v.issuers[s.url] = newIssuer(s, now, skew, logger)
	}
	return v, nil
}

// Verify returns the principal token stands for, or a [*TokenError]. A
// configured static token wins over everything else; otherwise a JWT is
// routed by its (as yet unverified) iss claim to the one issuer allowed to
// vouch for it, and verified fully there. ctx bounds any request to the
// issuer; the result is never cached, so a revoked static token or an
// expired JWT stops working at once.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if p := v.verifyStatic(token); p != nil {
		return p, nil
	}
	if token == "" {
		return nil, tokenErr(ReasonMalformed, "", errors.New("empty token"))
	}
	if !looksLikeJWT(token) {
		return nil, tokenErr(ReasonUnknownToken, "", errors.New("not a configured static token, nor a JWT"))
	}
	parts, err := parseUnverified(token)
	if err != nil {
		return nil, tokenErr(ReasonMalformed, "", err)
	}
	iss, _ := parts.claims["iss"].(string)
	if iss == "" {
		return nil, tokenErr(ReasonMalformed, "", errors.New("iss claim is missing or not a string"))
	}
	is, ok := v.issuers[iss]
	if !ok {
		// The iss value is not quoted: it is unverified, attacker-chosen text.
		return nil, tokenErr(ReasonUnknownIssuer, "", errors.New("iss matches no configured issuer_url (compared exactly, trailing slash included)"))
	}
	return is.verify(ctx, token, parts)
}

// verifyStatic compares token with every static token in constant time,
// through SHA-256 so that the comparison does not depend on lengths, and
// without stopping at a match, so that timing reveals neither whether nor
// which token matched.
func (v *Verifier) verifyStatic(token string) *Principal {
	h := sha256.Sum256([]byte(token))
	found, idx := 0, 0
	for i := range v.static {
		eq := subtle.ConstantTimeCompare(h[:], v.static[i].hash[:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found == 0 {
		return nil
	}
	s := v.static[idx]
	return &Principal{
		Issuer:  StaticIssuer,
		Subject: s.name,
		Name:    s.name,
		Groups:  clone(s.groups),
		Claims:  map[string]any{},
	}
}
