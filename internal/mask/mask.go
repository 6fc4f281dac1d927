package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"sync"
	"unsafe"
)

// Style is how a detected card number is partially masked.
type Style uint8

const (
	// StyleFirst6Last4 shows at most the BIN and the last four digits, the
	// most PCI DSS 3.4.1 allows. It is the zero value.
	StyleFirst6Last4 Style = iota
	// StyleLast4 shows at most the last four digits.
	StyleLast4
)

var styleNames = [...]string{StyleFirst6Last4: "first6-last4", StyleLast4: "last4"}

func (s Style) String() string {
	if int(s) < len(styleNames) {
		return styleNames[s]
	}
	return fmt.Sprintf("Style(%d)", s)
}

// ParseStyle parses "first6-last4" or "last4".
func ParseStyle(s string) (Style, error) {
	for i, n := range styleNames {
		if s == n {
			return Style(i), nil
		}
	}
	return 0, fmt.Errorf("mask: unknown PAN style %q (want %s)", s, strings.Join(styleNames[:], " or "))
}

// CustomDetector masks whatever a regular expression matches, for values the
// built-in detectors do not know (employee ids, internal account numbers).
type CustomDetector struct {
	// Name identifies the detector in errors.
	Name string
	// Pattern is RE2 syntax (package regexp), compiled once by New.
	Pattern string
	// Replacement replaces each match, with $1-style expansion as in
	// regexp.Regexp.Expand. Empty means: MaskChar for every byte of the match,
	// keeping the length.
	Replacement string
}

// Config selects the detectors of a Masker and how they mask. The zero value
// detects nothing; start from DefaultConfig.
type Config struct {
	PAN      bool  // payment card numbers
	PANStyle Style // how PANs found in values are masked
	Email    bool
	IBAN     bool
	SSN      bool // US social security numbers
	Custom   []CustomDetector
	// MaskChar replaces hidden characters; 0 means '*'. It must be ASCII
	// punctuation other than those the detectors read as structure
	// ("-.+@_%" and space), or masked output could be detected again.
	MaskChar byte
	// HashKey keys StrategyHash (HMAC-SHA256). At least 16 bytes if set;
	// keep it secret and stable, or tokens change and joins on them break.
	HashKey []byte
}

// DefaultConfig enables every built-in detector with the default style.
func DefaultConfig() Config {
	return Config{PAN: true, Email: true, IBAN: true, SSN: true}
}

// MinHashKeyLen is the shortest HashKey New accepts: tokens of card numbers
// keyed with less could be brute-forced from the small PAN space.
const MinHashKeyLen = 16

// Masker finds and masks sensitive values. It is immutable after New and
// safe for concurrent use.
type Masker struct {
	pan, email, iban, ssn bool
	panStyle              Style
	maskChar              byte
	custom                []customDetector
	hashKey               []byte
	hmacs                 sync.Pool // of hash.Hash keyed with hashKey; pooled because hmac.New allocates

	// digits is set when some detector needs to look at digit runs.
	digits bool
	// blank is the scanner's cursor over no input, set up once: its masks
	// depend only on the detectors.
	blank cursor
}

type customDetector struct {
	name string
	re   *regexp.Regexp
	repl []byte // nil: mask byte for byte
}

// New validates cfg and builds a Masker.
func New(cfg Config) (*Masker, error) {
	m := &Masker{
		pan: cfg.PAN, email: cfg.Email, iban: cfg.IBAN, ssn: cfg.SSN,
		panStyle: cfg.PANStyle,
		maskChar: cfg.MaskChar,
	}
	if cfg.PANStyle > StyleLast4 {
		return nil, fmt.Errorf("mask: unknown PAN style %d", cfg.PANStyle)
	}
	if m.maskChar == 0 {
		m.maskChar = '*'
	}
	if c := m.maskChar; c < 0x21 || c > 0x7e || isAlnum(c) || strings.IndexByte("-.+@_%", c) >= 0 {
		return nil, fmt.Errorf("mask: mask character %q: want ASCII punctuation other than -.+@_%%", c)
	}
	if len(cfg.HashKey) > 0 {
		if len(cfg.HashKey) < MinHashKeyLen {
			return nil, fmt.Errorf("mask: hash key: %d bytes, want at least %d", len(cfg.HashKey), MinHashKeyLen)
		}
		m.hashKey = append([]byte(nil), cfg.HashKey...)
		m.hmacs.New = func() any { return hmac.New(sha256.New, m.hashKey) }
	}
	for i, d := range cfg.Custom {
		if d.Name == "" {
			return nil, fmt.Errorf("mask: custom[%d]: name is empty", i)
		}
		if d.Pattern == "" {
			return nil, fmt.Errorf("mask: custom[%d] %q: pattern is empty", i, d.Name)
		}
		re, err := regexp.Compile(d.Pattern)
		if err != nil {
			return nil, fmt.Errorf("mask: custom[%d] %q: %w", i, d.Name, err)
		}
		if re.MatchString("") {
			// It would "match" between every two bytes of every value.
			return nil, fmt.Errorf("mask: custom[%d] %q: pattern matches the empty string", i, d.Name)
		}
		cd := customDetector{name: d.Name, re: re}
		if d.Replacement != "" {
			cd.repl = []byte(d.Replacement)
		}
		m.custom = append(m.custom, cd)
	}
	m.digits = m.pan || m.iban || m.ssn
	m.blank = newCursor(nil, m.digits, m.email)
	return m, nil
}

type kind uint8

const (
	kindPAN kind = iota + 1
	kindEmail
	kindIBAN
	kindSSN
)

// match is one detected value, src[start:end].
type match struct {
	kind       kind
	start, end int
}

// next returns the first value the built-in detectors find in src at or
// after from. It is the one pass Scan and AppendMask share: it only stops at
// digits and '@', and looks closer only at digit runs of the lengths a
// detector cares about.
func (m *Masker) next(src []byte, from int) (match, bool) {
	if !m.digits && !m.email {
		return match{}, false
	}
	c := m.blank
	c.src = src
	for i := from; ; {
		var j int
		var ok bool
		if i, j, ok = c.token(i); !ok {
			return match{}, false
		}
		if i == j {
			if s, e, ok := emailAt(src, i, from); ok {
				return match{kindEmail, s, e}, true
			}
			i++
			continue
		}
		n := j - i
		if m.iban && i >= 2 && n >= 2 && isLetter(src[i-1]) && isLetter(src[i-2]) {
			if e, ok := ibanAt(src, i-2); ok {
				return match{kindIBAN, i - 2, e}, true
			}
		}
		if m.pan {
			switch {
			case n >= minPAN && n <= maxPAN:
				if contiguousPAN(src, i, j) {
					return match{kindPAN, i, j}, true
				}
			case n == 4 && j+1 < len(src) && (src[j] == ' ' || src[j] == '-') && isDigit(src[j+1]):
				if e, ok := groupedPAN(src, i); ok {
					return match{kindPAN, i, e}, true
				}
			}
		}
		if m.ssn && n == 3 && ssnAt(src, i) {
			return match{kindSSN, i, i + 11}, true
		}
		i = j
	}
}

// Scan reports whether src holds any value the Masker would mask, that is,
// whether AppendMask would report found > 0. With only built-in detectors it
// does not allocate; the proxy calls it on every value and forwards the
// original bytes when it returns false.
func (m *Masker) Scan(src []byte) bool {
	if _, ok := m.next(src, 0); ok {
		return true
	}
	for _, d := range m.custom {
		if d.re.Match(src) {
			return true
		}
	}
	return false
}

// ScanString is Scan of a string without copying it (the proxy scans every
// statement's text before auditing and recording it): Scan only reads src.
func (m *Masker) ScanString(s string) bool {
	return m.Scan(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// maxPasses bounds the re-scans of AppendMask. Each pass turns at least one
// byte into the mask character and none back, so the loop ends anyway; the
// bound only keeps a future detector bug from spinning.
const maxPasses = 8

// AppendMask appends src to dst with every detected value masked and reports
// how many values it masked. Custom detectors run first, in order, then the
// built-in ones. Built-in masks keep the length of what they replace.
//
// Kept digits can line up with their neighbours into a new card number
// ("…4111" + " 1111 1111 1111"), so AppendMask re-scans its output and masks
// what it finds there whole, until the output is clean: Scan on the result of
// the built-in detectors is always false.
//
// It allocates only to grow dst or when a custom detector matches.
func (m *Masker) AppendMask(dst, src []byte) (out []byte, found int) {
	out, found = m.AppendMaskIfFound(dst, src)
	if found == 0 {
		return append(dst, src...), 0
	}
	return out, found
}

// AppendMaskIfFound is AppendMask for callers that forward clean values as
// they are: when it finds nothing it returns dst unchanged and found 0,
// without copying src. It scans once where Scan then AppendMask would scan
// a value that needs masking twice.
func (m *Masker) AppendMaskIfFound(dst, src []byte) (out []byte, found int) {
	if len(m.custom) > 0 {
		src, found = m.applyCustom(src)
	}
	if found == 0 && len(src) <= maxPAN && allDigits(src) {
		return m.appendDigitsMask(dst, src)
	}
	mt, ok := m.next(src, 0)
	if !ok {
		if found > 0 {
			return append(dst, src...), found
		}
		return dst, 0
	}
	base := len(dst)
	out = append(dst, src...)
	view := out[base:]
	for ; ok; mt, ok = m.next(src, mt.end) {
		m.maskMatch(view[mt.start:mt.end], mt.kind, false)
		found++
	}
	for pass := 0; ; pass++ {
		mt, ok := m.next(view, 0)
		if !ok {
			return out, found
		}
		if pass == maxPasses {
			// Fail closed: no digit leaves.
			for i, c := range view {
				if isDigit(c) {
					view[i] = m.maskChar
				}
			}
			return out, found
		}
		for ; ok; mt, ok = m.next(view, mt.end) {
			m.maskMatch(view[mt.start:mt.end], mt.kind, true)
			found++
		}
	}
}

// appendDigitsMask is AppendMaskIfFound for a value of at most maxPAN
// digits and nothing else, as in a PAN, id or amount column: the shape of
// most values of a large result. Without a separator, letter or '@' no
// detector but the contiguous card number can match, and that one only the
// whole value: a maximal digit run with no neighbours for the phone,
// decimal, hex-blob or UUID rules to look at. So the value is a card number
// exactly when validPAN says so, and the scanner is skipped.
//
// The masked form is at most six digits, mask characters, at most four
// digits: no run long enough for any detector, so there is nothing to
// re-scan (FuzzAppendMask checks that the output is clean, and
// TestDigitsFastPathAgreesWithScanner that this path and the scanner agree).
func (m *Masker) appendDigitsMask(dst, src []byte) ([]byte, int) {
	if !m.pan || len(src) < minPAN || !validPAN(src) {
		return dst, 0
	}
	first, last := shown(len(src), m.panStyle)
	dst = append(dst, src[:first]...)
	for range len(src) - first - last {
		dst = append(dst, m.maskChar)
	}
	return append(dst, src[len(src)-last:]...), 1
}

// allDigits reports whether b holds ASCII digits only.
func allDigits(b []byte) bool { return digitRunEnd(b, 0) == len(b) }

// maskMatch masks one detected value in place. whole hides every digit and
// letter: used for values that only appeared after masking.
func (m *Masker) maskMatch(b []byte, k kind, whole bool) {
	c := m.maskChar
	if whole {
		for i, x := range b {
			if isAlnum(x) {
				b[i] = c
			}
		}
		return
	}
	switch k {
	case kindPAN:
		maskDigits(b, m.panStyle, c)
	case kindEmail:
		maskEmail(b, c)
	case kindIBAN:
		maskIBAN(b, c)
	case kindSSN:
		maskSSN(b, c)
	}
}

// applyCustom runs the custom detectors in order, each on the previous one's
// output. It returns src itself when nothing matches.
func (m *Masker) applyCustom(src []byte) ([]byte, int) {
	found := 0
	for _, d := range m.custom {
		idx := d.re.FindAllSubmatchIndex(src, -1)
		if len(idx) == 0 {
			continue
		}
		out := make([]byte, 0, len(src))
		last := 0
		for _, loc := range idx {
			out = append(out, src[last:loc[0]]...)
			if d.repl == nil {
				for range loc[1] - loc[0] {
					out = append(out, m.maskChar)
				}
			} else {
				out = d.re.Expand(out, d.repl, src, loc)
			}
			last = loc[1]
		}
		src = append(out, src[last:]...)
		found += len(idx)
	}
	return src, found
}

// ErrNoHashKey is returned by CheckStrategy for StrategyHash when the Masker
// has no HashKey.
var ErrNoHashKey = errors.New("mask: hash strategy needs a hash key")

func (m *Masker) hmac() hash.Hash { return m.hmacs.Get().(hash.Hash) }
