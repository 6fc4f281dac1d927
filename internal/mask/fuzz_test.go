package mask

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// FuzzAppendMask checks what must hold for any value: no panic, built-in
// masks keep the length, no card number of a known network survives, and the
// output is clean for Scan.
func FuzzAppendMask(f *testing.F) {
	for _, s := range []string{
		"4111111111111111",
		"4111 1111 1111 1111 2027",
		"3782 822463 10005",
		`{"card":"4242424242424242","exp":"12/27"}`,
		"{4111111111111111,5555555555554444}",
		"12345678904111111111111111987",
		"550e8400-e29b-41d4-a716-446655440000",
		"jane.doe@example.org DE89 3704 0044 0532 0130 00 078-05-1120",
		"a@4111111111111111.com",
		"5555555555554111 1111 1111 1111",
		"+4915123456789 0.4111111111111111",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("5105105105105100"), true)
	first6 := mustNew(f, DefaultConfig())
	last4 := mustNew(f, Config{PAN: true, PANStyle: StyleLast4, Email: true, IBAN: true, SSN: true, MaskChar: '#'})
	f.Fuzz(func(t *testing.T, in []byte, useLast4 bool) {
		m := first6
		if useLast4 {
			m = last4
		}
		checkMaskProperties(t, m, in)
	})
}

// checkMaskProperties holds for any input: src untouched, length kept,
// found agrees with Scan, the output is clean, and no card of a known network
// survives.
func checkMaskProperties(t *testing.T, m *Masker, in []byte) {
	t.Helper()
	orig := bytes.Clone(in)
	out, found := m.AppendMask(nil, in)
	if !bytes.Equal(in, orig) {
		t.Fatal("src modified")
	}
	if len(out) != len(in) {
		t.Fatalf("%q -> %q: length changed", in, out)
	}
	if (found > 0) != m.Scan(in) {
		t.Fatalf("%q: found %d but Scan %v", in, found, m.Scan(in))
	}
	if found == 0 && !bytes.Equal(out, in) {
		t.Fatalf("%q -> %q: changed with nothing found", in, out)
	}
	if m.Scan(out) {
		t.Fatalf("%q -> %q: output still has a detectable value", in, out)
	}
	// Independently of the scanner: every Luhn-valid card-shaped run in
	// the output was in the input, unchanged, and the scanner did not
	// take it for a card there (a decimal, a phone number, a digest).
	for i := 0; i < len(out); {
		if !isDigit(out[i]) {
			i++
			continue
		}
		j := i
		for j < len(out) && isDigit(out[j]) {
			j++
		}
		if d := out[i:j]; j-i >= minPAN && j-i <= maxPAN && networkOf(d) != "" && naiveLuhn(d) {
			if !bytes.Equal(in[i:j], d) || contiguousPAN(in, i, j) {
				t.Fatalf("%q -> %q: card %s in the output", in, out, d)
			}
		}
		i = j
	}
}

// TestMaskPropertiesStructured feeds checkMaskProperties the inputs a byte
// fuzzer seldom builds: Luhn-valid cards of every network, grouped and not,
// packed next to digits, separators, letters and each other.
func TestMaskPropertiesStructured(t *testing.T) {
	m := mustNew(t, DefaultConfig())
	r := rand.New(rand.NewPCG(1, 2))
	prefixes := []string{"4", "51", "2221", "34", "6011", "3528", "300", "36", "62", "50", "2200", "4111", "5555"}
	lengths := []int{12, 13, 14, 15, 16, 17, 18, 19}
	pieces := []string{" ", "-", ".", "+", "@", "x", "a", "DE", "0", "12", "2027", "1111", " 1111", "-1111", "*", "@example.com", "\n"}
	for range 20000 {
		var b []byte
		for range 1 + r.IntN(6) {
			if r.IntN(2) == 0 {
				card := cardOf(prefixes[r.IntN(len(prefixes))], lengths[r.IntN(len(lengths))])
				if r.IntN(3) == 0 {
					sep := " -"[r.IntN(2)]
					for i := 0; i < len(card); i += 4 {
						if i > 0 {
							b = append(b, sep)
						}
						b = append(b, card[i:min(i+4, len(card))]...)
					}
				} else {
					b = append(b, card...)
				}
			} else {
				b = append(b, pieces[r.IntN(len(pieces))]...)
			}
		}
		checkMaskProperties(t, m, b)
		if t.Failed() {
			return
		}
	}
}

// naiveLuhn is the textbook Luhn check, kept apart from luhnValid so the fuzz
// property does not trust the code under test.
func naiveLuhn(d []byte) bool {
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}
