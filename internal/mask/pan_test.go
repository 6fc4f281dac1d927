package mask

import (
	"strings"
	"testing"
)

// luhnComplete appends the check digit that makes body Luhn-valid.
func luhnComplete(body string) string {
	for d := byte('0'); d <= '9'; d++ {
		if s := body + string(d); luhnValid([]byte(s)) {
			return s
		}
	}
	panic("unreachable")
}

// cardOf returns a Luhn-valid number of length n that starts with prefix.
func cardOf(prefix string, n int) string {
	return luhnComplete(prefix + strings.Repeat("0", n-1-len(prefix)))
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		digits string
		want   bool
	}{
		{"4111111111111111", true},
		{"4111111111111112", false},
		{"378282246310005", true},
		{"30569309025904", true},
		{"6011111111111117", true},
		{"1748503543012", true},
		{"0000000000000", true},
		{"79927398713", true},
		{"79927398710", false},
		{"5555555555554444", true},
		{"5555555555554445", false},
	} {
		if got := luhnValid([]byte(tc.digits)); got != tc.want {
			t.Errorf("luhnValid(%s) = %v, want %v", tc.digits, got, tc.want)
		}
	}
}

func TestNetworkEdges(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		n      int
		want   string
	}{
		{"4", 13, "visa"}, {"4", 16, "visa"}, {"4", 19, "visa"}, {"4", 14, ""}, {"4", 15, ""}, {"4", 12, ""},
		{"51", 16, "mastercard"}, {"55", 16, "mastercard"}, {"55", 15, ""}, {"55", 17, ""},
		{"2220", 16, ""}, {"2221", 16, "mastercard"}, {"2720", 16, "mastercard"}, {"2721", 16, ""},
		{"34", 15, "amex"}, {"37", 15, "amex"}, {"37", 16, ""}, {"35", 15, ""}, {"33", 15, ""},
		{"6011", 16, "discover"}, {"6011", 19, "discover"}, {"6012", 16, "maestro"},
		{"644", 16, "discover"}, {"649", 16, "discover"}, {"643", 16, "maestro"},
		{"65", 16, "discover"}, {"65", 15, "maestro"},
		{"622126", 16, "discover"}, {"622925", 19, "discover"}, {"622125", 16, "unionpay"}, {"622926", 16, "unionpay"},
		{"3527", 16, ""}, {"3528", 16, "jcb"}, {"3589", 19, "jcb"}, {"3590", 16, ""}, {"3528", 15, ""},
		{"300", 14, "diners"}, {"305", 19, "diners"}, {"306", 14, ""}, {"36", 14, "diners"}, {"38", 14, "diners"}, {"39", 16, "diners"}, {"36", 13, ""},
		{"62", 16, "unionpay"}, {"62", 12, "maestro"},
		{"50", 12, "maestro"}, {"56", 12, "maestro"}, {"69", 19, "maestro"}, {"57", 20, ""},
		{"2200", 16, "mir"}, {"2204", 16, "mir"}, {"2205", 16, ""}, {"2200", 17, ""},
		{"1", 16, ""}, {"7", 16, ""}, {"8", 16, ""}, {"9", 16, ""}, {"0", 16, ""}, {"17", 13, ""},
	} {
		d := []byte(cardOf(tc.prefix, tc.n))
		if got := networkOf(d); got != tc.want {
			t.Errorf("networkOf(%s) = %q, want %q", d, got, tc.want)
		}
		if tc.n < minPAN || tc.n > maxPAN {
			continue
		}
		if got := validPAN(d); got != (tc.want != "") {
			t.Errorf("validPAN(%s) = %v, want %v", d, got, tc.want != "")
		}
	}
}

// The prefix table is an over-approximation derived from networks; a number
// some network issues must never be rejected by it.
func TestPrefixTableCoversNetworks(t *testing.T) {
	for p := 0; p < 1000000; p++ {
		// Six-digit prefixes only matter where a six-digit range starts.
		if p%100 != 0 && p/100 != 6221 && p/100 != 6229 {
			continue
		}
		pre := []byte{byte('0' + p/100000), byte('0' + p/10000%10), byte('0' + p/1000%10), byte('0' + p/100%10), byte('0' + p/10%10), byte('0' + p%10)}
		for n := minPAN; n <= maxPAN; n++ {
			d := append(append([]byte(nil), pre...), make([]byte, n-6)...)
			for i := 6; i < n; i++ {
				d[i] = '0'
			}
			if networkOf(d) != "" && prefixLengths[p/100]&(1<<(n-minPAN)) == 0 {
				t.Fatalf("prefix table rejects %s (%s)", d, networkOf(d))
			}
			// validPAN trusts the table where it says it is exact.
			for _, last := range []byte{'0', '5', '9'} {
				d[n-2] = last
				card := []byte(luhnComplete(string(d[:n-1])))
				if want := networkOf(card) != ""; validPAN(card) != want {
					t.Fatalf("validPAN(%s) = %v, networkOf %q", card, !want, networkOf(card))
				}
			}
		}
	}
}

func TestShown(t *testing.T) {
	for _, tc := range []struct {
		n           int
		style       Style
		first, last int
	}{
		{16, StyleFirst6Last4, 6, 4},
		{19, StyleFirst6Last4, 6, 4},
		{15, StyleFirst6Last4, 6, 4},
		{14, StyleFirst6Last4, 5, 4},
		{12, StyleFirst6Last4, 3, 4},
		{16, StyleLast4, 0, 4},
		{12, StyleLast4, 0, 4},
		{8, StyleLast4, 0, 3},
		{4, StyleLast4, 0, 0},
		{0, StyleFirst6Last4, 0, 0},
	} {
		first, last := shown(tc.n, tc.style)
		if first != tc.first || last != tc.last {
			t.Errorf("shown(%d, %v) = %d, %d; want %d, %d", tc.n, tc.style, first, last, tc.first, tc.last)
		}
	}
}

// maskCase is one value and what AppendMask must make of it; want == in
// means nothing is detected.
type maskCase struct{ in, want string }

func runMaskCases(t *testing.T, m *Masker, cases []maskCase) {
	t.Helper()
	for _, tc := range cases {
		src := []byte(tc.in)
		out, found := m.AppendMask(nil, src)
		if string(out) != tc.want {
			t.Errorf("AppendMask(%q) = %q, want %q", tc.in, out, tc.want)
		}
		if changed := tc.in != tc.want; (found > 0) != changed || m.Scan(src) != changed {
			t.Errorf("%q: found %d, Scan %v; want a find: %v", tc.in, found, m.Scan(src), changed)
		}
	}
}

func TestPAN(t *testing.T) {
	m := mustNew(t, Config{PAN: true})
	runMaskCases(t, m, []maskCase{
		// Networks and formats.
		{"4111111111111111", "411111******1111"},
		{"4222222222222", "4222*****2222"},
		{"4111111111111111110", "411111*********1110"},
		{"378282246310005", "378282*****0005"},
		{"30569309025904", "30569*****5904"},
		{"2223003122003222", "222300******3222"},
		{"6011111111111117", "601111******1117"},
		{"3530111333300000", "353011******0000"},
		{"6200000000000005", "620000******0005"},
		{"2200000000000004", "220000******0004"},
		{cardOf("50", 12), "500*****" + cardOf("50", 12)[8:]},
		{"4111 1111 1111 1111", "4111 11** **** 1111"},
		{"5555-5555-5555-4444", "5555-55**-****-4444"},
		{"3782 822463 10005", "3782 82**** *0005"},
		{"3056 930902 5904", "3056 9***** 5904"},
		{"4111 1111 1111 1111 110", "4111 11** **** ***1 110"},

		// Contexts where it must be found.
		{`{"card":"4242424242424242","exp":"12/27"}`, `{"card":"424242******4242","exp":"12/27"}`},
		{`{"card":4242424242424242}`, `{"card":424242******4242}`},
		{"1,4111111111111111,12/27,Jane", "1,411111******1111,12/27,Jane"},
		{"{4111111111111111,5555555555554444}", "{411111******1111,555555******4444}"},
		{"charged card 5105105105105100 for order 991", "charged card 510510******5100 for order 991"},
		{"card:4242424242424242", "card:424242******4242"},
		{"card 4111111111111111.", "card 411111******1111."},
		{`ERROR: duplicate key value violates unique constraint "cards_pan_key" DETAIL: Key (pan)=(4111111111111111) already exists.`,
			`ERROR: duplicate key value violates unique constraint "cards_pan_key" DETAIL: Key (pan)=(411111******1111) already exists.`},
		{"x4111111111111111", "x411111******1111"},
		{"4111111111111111x", "411111******1111x"},
		{"-4111111111111111", "-411111******1111"},
		{"ORD-2024-4111111111111111", "ORD-2024-411111******1111"},
		{"4111111111111111\n5555555555554444", "411111******1111\n555555******4444"},
		{"\t4111111111111111\t", "\t411111******1111\t"},
		{"pan=4111 1111 1111 1111 exp=2027", "pan=4111 11** **** 1111 exp=2027"},
		// A trailing group or a leading one does not hide the card.
		{"4111 1111 1111 1111 2027", "4111 11** **** 1111 2027"},
		{"12 4111 1111 1111 1111", "12 4111 11** **** 1111"},
		{"1234 4111 1111 1111 1111", "1234 4111 11** **** 1111"},
		{"4111-1111-1111-1111-20", "4111-11**-****-1111-20"}, // 18 digits: no Visa, 16 are

		// Not PANs.
		{"1748503543012", "1748503543012"},
		{"1748503543012345", "1748503543012345"},
		{"550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"},
		{"4111111111111112", "4111111111111112"},
		{"ORD-000123456789", "ORD-000123456789"},
		{"ORD-41111111111111112222", "ORD-41111111111111112222"},
		{"12345678904111111111111111987", "12345678904111111111111111987"},
		{"41111111111111111", "41111111111111111"},
		{"411111111111111", "411111111111111"},
		{"+1 415 555 0100", "+1 415 555 0100"},
		{"+4915123456789", "+4915123456789"},
		{"978-3-16-148410-0", "978-3-16-148410-0"},
		{"192.168.100.200", "192.168.100.200"},
		{"2026-11-22 02:25:52", "2026-11-22 02:25:52"},
		{"2026-11-22 02:25:52.123456+00", "2026-11-22 02:25:52.123456+00"},
		{"4111", "4111"},
		{"", ""},
		{"0.4111111111111111", "0.4111111111111111"},
		{"4111111111111111.25", "4111111111111111.25"},
		{"4111 1111-1111 1111", "4111 1111-1111 1111"},
		{"4111  1111  1111  1111", "4111  1111  1111  1111"},
		{"4111.1111.1111.1111", "4111.1111.1111.1111"},
		{"e3b0c44298fc1c149afbf4c8996fb9242ae41e4649b934ca495991b7852b855", "e3b0c44298fc1c149afbf4c8996fb9242ae41e4649b934ca495991b7852b855"},
		{"deadbeefcafe4111111111111111deadbeefcafe", "deadbeefcafe4111111111111111deadbeefcafe"},
		{"\\x41111111111111111111111111111111aa", "\\x41111111111111111111111111111111aa"},
		{"12345678-1234-1234-5012-345678901234", "12345678-1234-1234-5012-345678901234"},
		{"00000000-0000-4000-8000-" + cardOf("50", 12), "00000000-0000-4000-8000-" + cardOf("50", 12)},
		{"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"},
	})
}

func TestPANStyleLast4(t *testing.T) {
	m := mustNew(t, Config{PAN: true, PANStyle: StyleLast4, MaskChar: '#'})
	runMaskCases(t, m, []maskCase{
		{"4111111111111111", "############1111"},
		{"4111 1111 1111 1111", "#### #### #### 1111"},
		{"378282246310005", "###########0005"},
	})
}

// Masked digits can line up with neighbouring digits into a new PAN; the
// output must still be clean.
func TestMaskOutputIsClean(t *testing.T) {
	m := mustNew(t, DefaultConfig())
	tail := cardOf("55555555555", 16) // any Luhn-valid Mastercard
	for _, in := range []string{
		// The kept last four of the first card plus the groups after it
		// spell a Luhn-valid Visa.
		luhnCardEndingWith("4111") + " 1111 1111 1111",
		"a@4111111111111111.com",
		tail + " " + tail,
	} {
		out, _ := m.AppendMask(nil, []byte(in))
		if m.Scan(out) {
			t.Errorf("AppendMask(%q) = %q, still detected", in, out)
		}
		if len(out) != len(in) {
			t.Errorf("AppendMask(%q) = %q: length changed", in, out)
		}
	}
}

// luhnCardEndingWith returns a Luhn-valid Mastercard ending in suffix.
func luhnCardEndingWith(suffix string) string {
	for i := 0; ; i++ {
		s := "5555" + strings.Repeat("0", 12-len(suffix)-3) + string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10)) + suffix
		if luhnValid([]byte(s)) {
			return s
		}
	}
}
