package mask

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseStrategy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Strategy
	}{
		{"redact", StrategyRedact},
		{"last4", StrategyLast4},
		{"first6-last4", StrategyFirst6Last4},
		{"hash", StrategyHash},
		{"null", StrategyNull},
	} {
		got, err := ParseStrategy(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseStrategy(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, bad := range []string{"", "Redact", " hash", "mask", "first6last4"} {
		_, err := ParseStrategy(bad)
		if err == nil {
			t.Errorf("ParseStrategy(%q): no error", bad)
			continue
		}
		if want := "want one of redact, last4, first6-last4, hash, null"; !strings.Contains(err.Error(), want) {
			t.Errorf("ParseStrategy(%q): %v, want it to list the names", bad, err)
		}
	}
}

func TestStrategies(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	m := mustNew(t, Config{HashKey: key})
	for _, tc := range []struct {
		s      Strategy
		in     string
		want   string
		isNull bool
	}{
		{StrategyRedact, "4111111111111111", Redacted, false},
		{StrategyRedact, "", Redacted, false},
		{StrategyLast4, "4111111111111111", "************1111", false},
		{StrategyLast4, "4111-1111-1111-1111", "****-****-****-1111", false},
		{StrategyLast4, "Jane Doe", "**** *oe", false}, // 7 letters: 5 stay hidden
		{StrategyLast4, "1234", "****", false},         // too short to show anything
		{StrategyLast4, "123456789", "*****6789", false},
		{StrategyLast4, "Zoë Çelik", "*** **lik", false},
		{StrategyFirst6Last4, "4111111111111111", "411111******1111", false},
		{StrategyFirst6Last4, "4111 1111 1111 1111", "4111 11** **** 1111", false},
		{StrategyFirst6Last4, "378282246310005", "378282*****0005", false},
		{StrategyFirst6Last4, "abc", "***", false},
		{StrategyNull, "4111111111111111", "", true},
		{0, "4111111111111111", Redacted, false},  // unknown fails closed
		{99, "4111111111111111", Redacted, false}, // unknown fails closed
	} {
		out, isNull := m.AppendStrategy([]byte("pre:"), []byte(tc.in), tc.s)
		if string(out) != "pre:"+tc.want || isNull != tc.isNull {
			t.Errorf("AppendStrategy(%q, %v) = %q, %v; want %q, %v", tc.in, tc.s, out, isNull, "pre:"+tc.want, tc.isNull)
		}
	}
}

func TestStrategyHash(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	m := mustNew(t, Config{HashKey: key})
	m2 := mustNew(t, Config{HashKey: key})
	other := mustNew(t, Config{HashKey: []byte("another key, 16+ bytes")})
	tok := func(m *Masker, v string) string {
		out, isNull := m.AppendStrategy(nil, []byte(v), StrategyHash)
		if isNull {
			t.Fatal("hash returned null")
		}
		return string(out)
	}
	a := tok(m, "4111111111111111")
	if !regexp.MustCompile(`^tok_[a-z2-7]{26}$`).MatchString(a) {
		t.Errorf("token %q: want tok_ and 26 base32 characters", a)
	}
	if tok(m, "4111111111111111") != a || tok(m2, "4111111111111111") != a {
		t.Error("equal inputs under one key give different tokens")
	}
	if tok(m, "5555555555554444") == a {
		t.Error("different inputs give one token")
	}
	if tok(other, "4111111111111111") == a {
		t.Error("different keys give one token")
	}
	// A known answer pins the construction (HMAC-SHA256, first 16 bytes,
	// lower-case unpadded base32) so tokens stay stable across releases.
	if got, want := tok(m, ""), "tok_"+tokenOfEmpty; got != want {
		t.Errorf("token of empty value = %q, want %q", got, want)
	}

	noKey := mustNew(t, Config{})
	if err := noKey.CheckStrategy(StrategyHash); !errors.Is(err, ErrNoHashKey) {
		t.Errorf("CheckStrategy(hash) without key = %v, want ErrNoHashKey", err)
	}
	if out, _ := noKey.AppendStrategy(nil, []byte("4111111111111111"), StrategyHash); string(out) != Redacted {
		t.Errorf("hash without key = %q, want %q", out, Redacted)
	}
	if err := m.CheckStrategy(StrategyHash); err != nil {
		t.Errorf("CheckStrategy(hash) = %v", err)
	}
	if err := m.CheckStrategy(0); err == nil {
		t.Error("CheckStrategy(0): no error")
	}
}

// tokenOfEmpty is HMAC-SHA256("0123456789abcdef0123456789abcdef", "") cut to
// 16 bytes, computed independently with Python's hmac and base64 modules.
const tokenOfEmpty = "pfwngb4k6fddm5j5e2z3kvkuei"
