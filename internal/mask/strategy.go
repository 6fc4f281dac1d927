package mask

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Strategy replaces a whole column value, whatever it holds. Column rules use
// it where the schema says a column is sensitive, so detection is not needed.
// The zero Strategy is invalid.
type Strategy uint8

const (
	// StrategyRedact replaces the value with Redacted. A fixed text rather
	// than a run of mask characters: its length says nothing about the
	// value, and neither a person nor an agent mistakes it for data.
	StrategyRedact Strategy = iota + 1
	// StrategyLast4 shows at most the last four letters or digits.
	StrategyLast4
	// StrategyFirst6Last4 shows at most the first six and last four letters
	// or digits.
	StrategyFirst6Last4
	// StrategyHash replaces the value with a token keyed by the Masker's
	// HashKey: "tok_" and the unpadded lower-case base32 of the first 16
	// bytes of HMAC-SHA256(key, value). Equal values give equal tokens, so
	// joins and GROUP BY on the column still work; without the key the
	// token cannot be reversed or recomputed.
	StrategyHash
	// StrategyNull makes the value SQL NULL; AppendStrategy reports it and
	// the protocol layer encodes it.
	StrategyNull
)

// Redacted is what StrategyRedact writes.
const Redacted = "[REDACTED]"

var strategyNames = [...]string{
	StrategyRedact:      "redact",
	StrategyLast4:       "last4",
	StrategyFirst6Last4: "first6-last4",
	StrategyHash:        "hash",
	StrategyNull:        "null",
}

func (s Strategy) String() string {
	if s != 0 && int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("Strategy(%d)", s)
}

// ParseStrategy parses a strategy name as configuration spells it: redact,
// last4, first6-last4, hash or null.
func ParseStrategy(s string) (Strategy, error) {
	for i, n := range strategyNames {
		if i != 0 && s == n {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("mask: unknown strategy %q (want one of %s)", s, strings.Join(strategyNames[1:], ", "))
}

// CheckStrategy reports whether m can apply s: ErrNoHashKey for StrategyHash
// without a key. Configuration loading calls it so that a bad rule is an
// error at start-up rather than redacted values at run time.
func (m *Masker) CheckStrategy(s Strategy) error {
	switch {
	case s == 0 || int(s) >= len(strategyNames):
		return fmt.Errorf("mask: unknown strategy %d", s)
	case s == StrategyHash && m.hashKey == nil:
		return ErrNoHashKey
	}
	return nil
}

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// AppendStrategy appends src transformed by s to dst. For StrategyNull it
// appends nothing and reports isNull. A strategy CheckStrategy rejects
// (unknown, or hash without a key) redacts: failing closed, never leaking the
// value or an unkeyed hash of it. SQL NULL inputs are the caller's: they stay
// NULL and never reach here.
func (m *Masker) AppendStrategy(dst, src []byte, s Strategy) (out []byte, isNull bool) {
	if m.CheckStrategy(s) != nil {
		s = StrategyRedact
	}
	switch s {
	case StrategyNull:
		return dst, true
	case StrategyHash:
		h := m.hmac()
		h.Reset()
		h.Write(src)
		var sum [sha256.Size]byte
		h.Sum(sum[:0])
		m.hmacs.Put(h)
		dst = append(dst, "tok_"...)
		return tokenEncoding.AppendEncode(dst, sum[:16]), false
	case StrategyLast4:
		return m.appendPartial(dst, src, StyleLast4), false
	case StrategyFirst6Last4:
		return m.appendPartial(dst, src, StyleFirst6Last4), false
	default:
		return append(dst, Redacted...), false
	}
}

// appendPartial masks every letter and digit of src but those shown under
// style; punctuation and spaces stay, so "4111-1111-1111-1111" keeps its
// shape. Each hidden rune becomes one mask character, so ASCII values keep
// their length. Invalid UTF-8 bytes count as hidden characters.
func (m *Masker) appendPartial(dst, src []byte, style Style) []byte {
	n := 0
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		if maskable(r) {
			n++
		}
		i += size
	}
	first, last := shown(n, style)
	k := 0
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		switch {
		case !maskable(r):
			dst = append(dst, src[i:i+size]...)
		case k < first || k >= n-last:
			dst = append(dst, src[i:i+size]...)
			k++
		default:
			dst = append(dst, m.maskChar)
			k++
		}
		i += size
	}
	return dst
}

func maskable(r rune) bool {
	return r == utf8.RuneError || unicode.IsLetter(r) || unicode.IsDigit(r)
}
