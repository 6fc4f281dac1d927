package identity

import (
	"errors"
	"fmt"
)

// Reason classifies why a token was rejected. Its String form is a short
// snake_case label, stable enough to use as a Prometheus label value.
type Reason uint8

// Reasons a token can be rejected for. The zero Reason is never returned.
const (
	// ReasonUnknownToken: not a configured static token and not JWT-shaped.
	ReasonUnknownToken Reason = iota + 1
	// ReasonMalformed: JWT-shaped but not decodable, or missing a claim
	// Gatehouse requires (iss, sub, exp, the configured name claim).
	ReasonMalformed
	// ReasonExpired: exp is further in the past than the allowed skew.
	ReasonExpired
	// ReasonNotYetValid: nbf or iat is further in the future than the
	// allowed skew.
	ReasonNotYetValid
	// ReasonBadSignature: the signature does not verify with any of the
	// issuer's published keys.
	ReasonBadSignature
	// ReasonBadAlgorithm: the token's alg is not one the issuer is
	// configured to accept ("none" and HMAC never are).
	ReasonBadAlgorithm
	// ReasonWrongAudience: aud does not include the configured audience.
	ReasonWrongAudience
	// ReasonUnknownIssuer: iss names no configured issuer.
	ReasonUnknownIssuer
	// ReasonIssuerUnavailable: the issuer's discovery document or keys could
	// not be fetched, so the token could not be judged. Not the caller's
	// fault, but still a rejection: identity fails closed.
	ReasonIssuerUnavailable
	// ReasonNoMapping: a valid token whose claims match no configured
	// mapping, so it is not authorized to use Gatehouse at all.
	ReasonNoMapping
)

var reasonLabels = [...]string{
	0:                       "unspecified",
	ReasonUnknownToken:      "unknown_token",
	ReasonMalformed:         "malformed",
	ReasonExpired:           "expired",
	ReasonNotYetValid:       "not_yet_valid",
	ReasonBadSignature:      "bad_signature",
	ReasonBadAlgorithm:      "bad_algorithm",
	ReasonWrongAudience:     "wrong_audience",
	ReasonUnknownIssuer:     "unknown_issuer",
	ReasonIssuerUnavailable: "issuer_unavailable",
	ReasonNoMapping:         "no_mapping",
}

// String returns the reason's snake_case label.
func (r Reason) String() string {
	if int(r) < len(reasonLabels) {
		return reasonLabels[r]
	}
	return fmt.Sprintf("reason_%d", uint8(r))
}

// TokenError is the only error [Verifier.Verify] returns. Its text is meant
// for operators and logs; it never contains the token or any part of it, nor
// claim values copied from an unverified token, so it is safe to log. Clients
// should get no more than "authentication failed" (SQLSTATE 28P01), so that
// the error cannot be used as an oracle.
type TokenError struct {
	Reason Reason
	// Issuer is the configured name of the issuer that judged the token,
	// "static" for static tokens, and empty when no issuer was chosen. It
	// never comes from the token itself, so it is safe as a metric label.
	Issuer string
	Err    error
}

func (e *TokenError) Error() string {
	msg := "identity: token rejected (" + e.Reason.String() + ")"
	if e.Issuer != "" {
		msg += " by issuer " + e.Issuer
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *TokenError) Unwrap() error { return e.Err }

// IsTokenError reports whether err is, or wraps, a [*TokenError].
func IsTokenError(err error) bool {
	var te *TokenError
	return errors.As(err, &te)
}

func tokenErr(r Reason, issuer string, err error) *TokenError {
	return &TokenError{Reason: r, Issuer: issuer, Err: err}
}
