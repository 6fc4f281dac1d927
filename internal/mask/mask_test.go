package mask

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

var cleanValues = []string{
	"",
	"hello",
	"The quick brown fox jumps over the lazy dog, order 991 shipped on 2026-11-22.",
	`{"id":12345,"created":"2026-11-22T02:25:52.123456Z","user":"agent-7","ok":true}`,
	"550e8400-e29b-41d4-a716-446655440000",
	"1748503543012,1748503543013,4111111111111112,+1 415 555 0100,192.168.100.200",
	"ORD-41111111111111112222 12345678904111111111111111987 0.30000000000000004",
	"postgres@db mailto:nobody GB12 123-45-678",
}

func TestScanDoesNotAllocate(t *testing.T) {
	m := mustNew(t, DefaultConfig())
	for _, v := range cleanValues {
		src := []byte(v)
		if n := testing.AllocsPerRun(100, func() { m.Scan(src) }); n != 0 {
			t.Errorf("Scan(%q): %v allocs, want 0", v, n)
		}
	}
	// Scanning a value with a card in it allocates nothing either.
	src := []byte("card 4111 1111 1111 1111 for jane@example.org")
	if n := testing.AllocsPerRun(100, func() { m.Scan(src) }); n != 0 {
		t.Errorf("Scan with finds: %v allocs, want 0", n)
	}
}

func TestScanString(t *testing.T) {
	m := mustNew(t, DefaultConfig())
	for _, v := range append(cleanValues, "card 4111 1111 1111 1111 for jane@example.org", "4111111111111111") {
		if got, want := m.ScanString(v), m.Scan([]byte(v)); got != want {
			t.Errorf("ScanString(%q) = %v, Scan = %v", v, got, want)
		}
		if n := testing.AllocsPerRun(100, func() { m.ScanString(v) }); n != 0 {
			t.Errorf("ScanString(%q): %v allocs, want 0", v, n)
		}
	}
	if !m.ScanString("4111111111111111") {
		t.Error("ScanString missed a card number")
	}
}

func TestAppendMaskDoesNotAllocate(t *testing.T) {
	m := mustNew(t, DefaultConfig())
	dst := make([]byte, 0, 1024)
	for _, v := range append(cleanValues, "card 4111 1111 1111 1111 for jane@example.org") {
		src := []byte(v)
		if n := testing.AllocsPerRun(100, func() { m.AppendMask(dst[:0], src) }); n != 0 {
			t.Errorf("AppendMask(%q) into a large enough dst: %v allocs, want 0", v, n)
		}
	}
}

func TestAppendMaskAppends(t *testing.T) {
	m := mustNew(t, DefaultConfig())
	dst := []byte("prefix|")
	out, found := m.AppendMask(dst, []byte("4111111111111111"))
	if string(out) != "prefix|411111******1111" || found != 1 {
		t.Errorf("got %q, %d", out, found)
	}
	out, found = m.AppendMask(out, []byte("|clean"))
	if string(out) != "prefix|411111******1111|clean" || found != 0 {
		t.Errorf("got %q, %d", out, found)
	}
	src := []byte("4111111111111111")
	m.AppendMask(nil, src)
	if string(src) != "4111111111111111" {
		t.Error("AppendMask modified src")
	}
}

func TestConcurrentUse(t *testing.T) {
	m := mustNew(t, Config{PAN: true, Email: true, HashKey: []byte("0123456789abcdef"),
		Custom: []CustomDetector{{Name: "emp", Pattern: `EMP-\d+`}}})
	in := []byte("EMP-1 4111111111111111 jane@example.org")
	want, _ := m.AppendMask(nil, in)
	wantTok, _ := m.AppendStrategy(nil, in, StrategyHash)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if out, _ := m.AppendMask(nil, in); !bytes.Equal(out, want) {
					t.Errorf("concurrent AppendMask = %q, want %q", out, want)
					return
				}
				if tok, _ := m.AppendStrategy(nil, in, StrategyHash); !bytes.Equal(tok, wantTok) {
					t.Errorf("concurrent hash = %q, want %q", tok, wantTok)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The SWAR helpers must agree with the byte-wise definitions on every byte
// in every lane.
func TestSWARExact(t *testing.T) {
	// Neighbours at the edges of the classes would expose a carry or borrow
	// leaking between lanes.
	for _, fill := range []byte{0x00, 0x2f, 0x30, 0x39, 0x3a, 0x3f, 0x40, 0x41, 0x7f, 0x80, 0xc0, 0xff} {
		for c := 0; c < 256; c++ {
			for lane := 0; lane < 8; lane++ {
				w := uint64(fill) * ones
				w = w&^(0xff<<(8*lane)) | uint64(c)<<(8*lane)
				d, a := digitBits(w), equalBits(w, '@')
				for l := 0; l < 8; l++ {
					b := byte(w >> (8 * l))
					if d>>(8*l+7)&1 == 1 != isDigit(b) || a>>(8*l+7)&1 == 1 != (b == '@') || (d|a)&^high != 0 {
						t.Fatalf("word %#016x lane %d: digitBits %#016x equalBits %#016x", w, l, d, a)
					}
				}
			}
		}
	}
	// Every start offset against every block alignment of the tokens, runs
	// crossing block boundaries included.
	src := []byte("abcdefghijklmnopqrstuvw0123456789xyz@ab1c22d333@@e4444444444444444444f" +
		strings.Repeat("x", 40) + "1234567890" + strings.Repeat("y", 50) + strings.Repeat("9", 150) + "@")
	for i := range src {
		want, wantEnd := i, i
		for want < len(src) && !isDigit(src[want]) && src[want] != '@' {
			want++
		}
		for wantEnd = want; wantEnd < len(src) && isDigit(src[wantEnd]); wantEnd++ {
		}
		c := newCursor(src, true, true)
		if start, end, ok := c.token(i); start != want || end != wantEnd || !ok {
			t.Errorf("token(%d) = %d, %d, %v; want %d, %d", i, start, end, ok, want, wantEnd)
		}
	}
}

// A value of digits alone skips the scanner (appendDigitsMask). With a
// space in front, the same digits go through the scanner, and a space is no
// neighbour any detector reads; so the two must mask alike, for every
// length around the card lengths, cards of every network, near misses and
// random digits, in both styles and with the PAN detector off.
func TestDigitsFastPathAgreesWithScanner(t *testing.T) {
	values := []string{"", "0", "4111", "411111111111", "4111111111111111", "4111111111111112"}
	for _, nw := range networks {
		for _, r := range nw.ranges {
			for _, n := range nw.lengths {
				card := cardOf(r.lo, n)
				values = append(values, card, card[:n-1], card+"0")
			}
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rnd.IntN(maxPAN+3))
		for i := range b {
			b[i] = byte('0' + rnd.IntN(10))
		}
		if len(b) > 1 && rnd.IntN(2) == 0 {
			b = []byte(luhnComplete(string(b[:len(b)-1])))
		}
		values = append(values, string(b))
	}
	for _, cfg := range []Config{DefaultConfig(), {PAN: true, PANStyle: StyleLast4, MaskChar: '#'}, {IBAN: true, SSN: true, Email: true}} {
		m := mustNew(t, cfg)
		masked := 0
		for _, v := range values {
			got, gotN := m.AppendMask(nil, []byte(v))
			want, wantN := m.AppendMask(nil, []byte(" "+v))
			if gotN != wantN || !bytes.Equal(got, want[1:]) {
				t.Fatalf("%+v: %q -> %q (%d found), through the scanner %q (%d)", cfg, v, got, gotN, want[1:], wantN)
			}
			masked += gotN
		}
		if cfg.PAN && masked < len(networks) {
			t.Fatalf("%+v: only %d of %d values masked: the test does not reach the fast path's masking", cfg, masked, len(values))
		}
	}
}
