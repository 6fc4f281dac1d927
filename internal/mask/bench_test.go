package mask

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

const benchSize = 64 << 10

// textInput is prose and JSON as agents read it: mostly letters, a few short
// numbers, no sensitive values.
func textInput() []byte {
	parts := []string{
		"The order was shipped to the customer on 2026-11-22 and delivered two days later. ",
		`{"id":48213,"status":"delivered","carrier":"UPS","note":"left at the front door","items":3} `,
		"ERROR: relation \"payments_archive\" does not exist at character 15. ",
		"Agent run 7 completed: 412 rows scanned, 0 rows updated, elapsed 1.25 s. ",
		"postgres@db-primary accepted connection from 10.0.3.17 port 51234. ",
	}
	var b strings.Builder
	for i := 0; b.Len() < benchSize; i++ {
		b.WriteString(parts[i%len(parts)])
	}
	return []byte(b.String()[:benchSize])
}

// digitInput is CSV of numbers: ids, millisecond timestamps, amounts,
// phone numbers, 12–20 digit references (none a PAN: Luhn or prefix fails,
// which is the costly case for the scanner).
func digitInput(m *Masker) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	var b []byte
	digits := func(n int) {
		for range n {
			b = append(b, byte('0'+r.IntN(10)))
		}
	}
	for len(b) < benchSize {
		b = strconv.AppendInt(b, int64(r.IntN(1000000)), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, 1748503543012+int64(r.IntN(1e9)), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, float64(r.IntN(100000))/100, 'f', 2, 64)
		b = append(b, ",+1"...)
		digits(10)
		for range 2 {
			b = append(b, ',', "456"[r.IntN(3)])
			start := len(b) - 1
			digits(11 + r.IntN(9))
			if m.Scan(b[start:]) {
				b = b[:start-1] // drop the rare accidental PAN
			}
		}
		b = append(b, '\n')
	}
	return b[:benchSize]
}

// maskInput is text with a card, an e-mail and an SSN about every 300 bytes.
func maskInput() []byte {
	var b strings.Builder
	for b.Len() < benchSize {
		b.WriteString(`{"customer":"jane.doe@example.org","card":"4111 1111 1111 1111","ssn":"078-05-1120","note":"paid in full on 2026-11-22, thank you"} `)
		b.WriteString("The order was shipped to the customer and delivered two days later without incident. ")
	}
	return []byte(b.String()[:benchSize])
}

func benchScan(b *testing.B, src []byte, m *Masker) {
	if m.Scan(src) {
		b.Fatal("benchmark input holds a sensitive value")
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		m.Scan(src)
	}
}

func BenchmarkScanText(b *testing.B) {
	benchScan(b, textInput(), mustNew(b, DefaultConfig()))
}

func BenchmarkScanDigits(b *testing.B) {
	m := mustNew(b, DefaultConfig())
	benchScan(b, digitInput(m), m)
}

// BenchmarkScanValues is the proxy's shape: many short column values, one
// call each, so per-call overhead shows.
func BenchmarkScanValues(b *testing.B) {
	m := mustNew(b, DefaultConfig())
	values := [][]byte{[]byte("48213"), []byte("delivered"), []byte("2026-11-22 02:25:52.123456+00"),
		[]byte("550e8400-e29b-41d4-a716-446655440000"), []byte("left at the front door"), []byte("1748503543012")}
	n := 0
	for _, v := range values {
		n += len(v)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range values {
			m.Scan(v)
		}
	}
}

func BenchmarkAppendMask(b *testing.B) {
	m := mustNew(b, DefaultConfig())
	src := maskInput()
	dst := make([]byte, 0, len(src))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = m.AppendMask(dst[:0], src)
	}
}

// BenchmarkMaskRowValues is one row of the benchmark's 1,000,000-row table
// (bench/pgbench.sh): a card number column, masked, and a short note.
func BenchmarkMaskRowValues(b *testing.B) {
	m := mustNew(b, DefaultConfig())
	pan, note := []byte("4111111111111111"), []byte("order 123456")
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var found int
		if dst, found = m.AppendMaskIfFound(dst[:0], pan); found != 1 {
			b.Fatalf("masked %d values in %q, want 1", found, pan)
		}
		if _, found = m.AppendMaskIfFound(dst[:0], note); found != 0 {
			b.Fatalf("masked %d values in %q, want 0", found, note)
		}
	}
}
