package pg

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/mask"
)

func dataRow(vals ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(vals)))
	for _, v := range vals {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

func newRowMasker(t testing.TB) *rowMasker {
	m, err := mask.New(mask.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &rowMasker{m: m}
}

// The big SELECT's shape: an int4 id, a text card number, a text note and a
// timestamptz.
var bigDesc = &rowDesc{cols: []column{newColumn(23, 0, 0), newColumn(25, 0, 0), newColumn(25, 0, 0), newColumn(1184, 0, 0)}}

func TestMaskDataRow(t *testing.T) {
	rm := newRowMasker(t)
	for _, tc := range []struct {
		name string
		desc *rowDesc
		row  []string
		want []string // nil: unchanged, the same body returned
	}{
		{"card in text", bigDesc, []string{"1", "4111111111111111", "order 1", "2026-11-22 05:00:00+00"},
			[]string{"1", "411111******1111", "order 1", "2026-11-22 05:00:00+00"}},
		{"nothing to mask", bigDesc, []string{"2147483647", "none", "order 2", "2026-11-22 05:00:00+00"}, nil},
		// No type information (a statement Gatehouse did not see described):
		// every value is scanned.
		{"unknown types", nil, []string{"4111111111111111", "x"}, []string{"411111******1111", "x"}},
		// A card number in a column whose declared type cannot hold one is
		// impossible from a real server; if a target lied about the type the
		// text would pass, which is why only fixed-width types are skipped.
		// A description that does not fit the row (a tracking bug) is not
		// trusted to skip any column.
		{"description of another shape", &rowDesc{cols: []column{newColumn(23, 0, 0)}}, []string{"4111111111111111", "x"},
			[]string{"411111******1111", "x"}},
		// The target's description is trusted for its own types: PostgreSQL
		// cannot put sixteen digits in an int4, so such a column is not
		// scanned (this is the saving, and its boundary).
		{"int4 column holding a card number", &rowDesc{cols: []column{newColumn(23, 0, 0), newColumn(23, 0, 0), newColumn(23, 0, 0)}},
			[]string{"4111111111111111", "1", "2"}, nil},
		{"int8 is scanned", &rowDesc{cols: []column{newColumn(oidInt8, 0, 0)}}, []string{"4111111111111111"}, []string{"411111******1111"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := dataRow(tc.row...)
			out, err := rm.maskDataRow(body, tc.desc, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if &out[0] != &body[0] {
					t.Fatal("an unchanged row was copied")
				}
				return
			}
			if got, want := string(out), string(dataRow(tc.want...)); got != want {
				t.Fatalf("masked row %q, want %q", got, want)
			}
		})
	}
}

// rm.vals must be the values of the row maskDataRow returned, whatever
// path each value took: NULLs, columns left alone before and after the row
// is rebuilt, masked values, strategies, and values written after rm.out
// had to grow (the slices taken before stay valid).
func TestMaskDataRowValues(t *testing.T) {
	rm := newRowMasker(t)
	long := strings.Repeat("x", 300)
	row := func(vals ...*string) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(vals)))
		for _, v := range vals {
			if v == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(*v)))
			b = append(b, *v...)
		}
		return b
	}
	str := func(s string) *string { return &s }
	desc := &rowDesc{cols: []column{newColumn(23, 0, 0), newColumn(25, 0, 0), newColumn(25, 0, 0), newColumn(25, 0, 0),
		newColumn(1184, 0, 0), newColumn(25, 0, mask.StrategyNull), newColumn(25, 0, mask.StrategyLast4), newColumn(25, 0, 0)}}
	for _, tc := range []struct {
		name string
		desc *rowDesc
		body []byte
	}{
		{"unchanged", bigDesc, row(str("1"), nil, str("order 1"), str("2026-11-22 05:00:00+00"))},
		{"rebuilt", desc, row(str("7"), nil, str(long), str("4111111111111111"), str("2026-11-22"), str("secret"), str("ABCDEFGH"), str(long+"4111111111111111"))},
		{"no description", nil, row(nil, str("4111111111111111"), str(long), nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm.out = rm.out[:0:0] // small, so the rebuilt row must grow it
			out, err := rm.maskDataRow(tc.body, tc.desc, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			want, err := dataRowValues(nil, out)
			if err != nil {
				t.Fatal(err)
			}
			if len(rm.vals) != len(want) {
				t.Fatalf("%d values, want %d", len(rm.vals), len(want))
			}
			for i := range want {
				if (rm.vals[i] == nil) != (want[i] == nil) || string(rm.vals[i]) != string(want[i]) {
					t.Errorf("value %d: %q, want %q", i, rm.vals[i], want[i])
				}
			}
		})
	}
}

func TestCannotCarryPAN(t *testing.T) {
	for oid, want := range map[uint32]bool{16: true, 21: true, 23: true, 1184: true, 20: false, 25: false, 1700: false, 701: false, 2950: false, 0: false} {
		if got := cannotCarryPAN(oid); got != want {
			t.Errorf("cannotCarryPAN(%d) = %v, want %v", oid, got, want)
		}
	}
}

// BenchmarkMaskDataRow is the big SELECT's per-row masking cost.
func BenchmarkMaskDataRow(b *testing.B) {
	rm := newRowMasker(b)
	body := dataRow("123456", "4111111111111111", "order 123456", "2026-11-22 05:00:00.123456+00")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := rm.maskDataRow(body, bigDesc, nil, false)
		if err != nil || !bytes.Contains(out, []byte("411111******1111")) {
			b.Fatal(err)
		}
	}
}
