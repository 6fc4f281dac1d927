package mask

import (
	"errors"
	"regexp/syntax"
	"strings"
	"testing"
)

func TestEmail(t *testing.T) {
	m := mustNew(t, Config{Email: true})
	runMaskCases(t, m, []maskCase{
		{"john@example.com", "j***@example.com"},
		{"john.doe+tag@mail.example.co.uk", "j***********@mail.example.co.uk"},
		{"a@example.com", "*@example.com"},
		{"write to John_D%x-y@example.com.", "write to J*********@example.com."},
		{`{"email":"jane@example.org","n":1}`, `{"email":"j***@example.org","n":1}`},
		{"<jane@example.org>, bob@example.net", "<j***@example.org>, b**@example.net"},
		{"mailto:jane@example.org", "mailto:j***@example.org"},
		{"see...jane@example.org", "see...j***@example.org"},
		{"jane2024@example.org", "j*******@example.org"},
		{"postgres@db", "postgres@db"},
		{"@example.com", "@example.com"},
		{"jane@", "jane@"},
		{"jane@example", "jane@example"},
		{"jane@example.c", "jane@example.c"},
		{"jane@example.123", "jane@example.123"},
		{"jane@-example.com", "jane@-example.com"},
		{"jane@example..com", "jane@example..com"},
		{"a@b@c", "a@b@c"},
		{"user @ example.com", "user @ example.com"},
		{"j***@example.com", "j***@example.com"}, // masked output is not found again
	})
}

func TestIBAN(t *testing.T) {
	m := mustNew(t, Config{IBAN: true})
	runMaskCases(t, m, []maskCase{
		{"DE89370400440532013000", "DE89**************3000"},
		{"DE89 3704 0044 0532 0130 00", "DE89 **** **** **** **30 00"},
		{"de89 3704 0044 0532 0130 00", "de89 **** **** **** **30 00"},
		{"GB29NWBK60161331926819", "GB29**************6819"},
		{"GB29 NWBK 6016 1331 9268 19", "GB29 **** **** **** **68 19"},
		{"NO9386011117947", "NO93*******7947"},
		{"BE68 5390 0754 7034 Bank", "BE68 **** **** 7034 Bank"},
		{"iban: FR14 2004 1010 0505 0001 3M02 606, ok", "iban: FR14 **** **** **** **** ***2 606, ok"},
		{`["DE89370400440532013000"]`, `["DE89**************3000"]`},
		{"DE89370400440532013001", "DE89370400440532013001"}, // mod-97 fails
		{"DE88370400440532013000", "DE88370400440532013000"}, // check digits wrong
		{"ZZ89370400440532013000", "ZZ89370400440532013000"}, // no such country
		{"De89370400440532013000", "De89370400440532013000"}, // mixed-case code
		{"XDE89370400440532013000", "XDE89370400440532013000"},
		{"DE89 3704", "DE89 3704"},
		{"AB12", "AB12"},
		{"flight LH2024 to GB12", "flight LH2024 to GB12"},
	})
}

func TestSSN(t *testing.T) {
	m := mustNew(t, Config{SSN: true})
	runMaskCases(t, m, []maskCase{
		{"078-05-1120", "***-**-1120"},
		{"ssn: 123-45-6789.", "ssn: ***-**-6789."},
		{`{"ssn":"665-01-0001"}`, `{"ssn":"***-**-0001"}`},
		{"x123-45-6789", "x***-**-6789"},
		{"000-12-3456", "000-12-3456"},
		{"666-12-3456", "666-12-3456"},
		{"900-12-3456", "900-12-3456"},
		{"999-12-3456", "999-12-3456"},
		{"123-00-3456", "123-00-3456"},
		{"123-45-0000", "123-45-0000"},
		{"1-123-45-6789", "1-123-45-6789"},
		{"123-45-6789-1", "123-45-6789-1"},
		{"123-45-67890", "123-45-67890"},
		{"1123-45-6789", "1123-45-6789"},
		{"123456789", "123456789"},
		{"123 45 6789", "123 45 6789"},
		{"123-45-678", "123-45-678"},
		{"2026-11-22", "2026-11-22"},
	})
}

func TestDetectorsSwitchable(t *testing.T) {
	in := "4111111111111111 jane@example.org DE89370400440532013000 078-05-1120"
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, in},
		{Config{PAN: true}, "411111******1111 jane@example.org DE89370400440532013000 078-05-1120"},
		{Config{Email: true}, "4111111111111111 j***@example.org DE89370400440532013000 078-05-1120"},
		{Config{IBAN: true}, "4111111111111111 jane@example.org DE89**************3000 078-05-1120"},
		{Config{SSN: true}, "4111111111111111 jane@example.org DE89370400440532013000 ***-**-1120"},
		{DefaultConfig(), "411111******1111 j***@example.org DE89**************3000 ***-**-1120"},
	} {
		m := mustNew(t, tc.cfg)
		out, _ := m.AppendMask(nil, []byte(in))
		if string(out) != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.cfg, out, tc.want)
		}
	}
}

func TestCustom(t *testing.T) {
	m := mustNew(t, Config{PAN: true, Custom: []CustomDetector{
		{Name: "employee", Pattern: `\bEMP-(\d{3})\d{3}\b`, Replacement: "EMP-${1}xxx"},
		{Name: "secret", Pattern: `sk_live_[A-Za-z0-9]+`},
		{Name: "acct", Pattern: `acct:(\d+)`, Replacement: "acct:$1"},
	}})
	runMaskCases(t, m, []maskCase{
		{"EMP-123456 and EMP-654321", "EMP-123xxx and EMP-654xxx"},
		{"key sk_live_abc123 end", "key ************** end"},
		// A replacement that copies a card back in is still masked.
		{"acct:4111111111111111", "acct:411111******1111"},
		{"nothing here", "nothing here"},
	})
	_, found := m.AppendMask(nil, []byte("EMP-123456 sk_live_x 4111111111111111"))
	if found != 3 {
		t.Errorf("found = %d, want 3", found)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"mask char letter", Config{MaskChar: 'x'}, "mask character"},
		{"mask char digit", Config{MaskChar: '0'}, "mask character"},
		{"mask char dash", Config{MaskChar: '-'}, "mask character"},
		{"mask char space", Config{MaskChar: ' '}, "mask character"},
		{"mask char non-ascii", Config{MaskChar: 0xe2}, "mask character"},
		{"short hash key", Config{HashKey: []byte("short")}, "hash key"},
		{"bad style", Config{PANStyle: 9}, "PAN style"},
		{"no name", Config{Custom: []CustomDetector{{Pattern: "x"}}}, "custom[0]: name is empty"},
		{"no pattern", Config{Custom: []CustomDetector{{Name: "a"}}}, `custom[0] "a": pattern is empty`},
		{"bad pattern", Config{Custom: []CustomDetector{{Name: "a", Pattern: "("}}}, `custom[0] "a": error parsing regexp`},
		{"empty match", Config{Custom: []CustomDetector{{Name: "a", Pattern: "x*"}}}, "matches the empty string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	_, err := New(Config{Custom: []CustomDetector{{Name: "a", Pattern: "("}}})
	var se *syntax.Error
	if !errors.As(err, &se) {
		t.Errorf("regexp error not wrapped: %v", err)
	}
	if _, err := New(Config{MaskChar: '#', HashKey: make([]byte, MinHashKeyLen)}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestParseStyle(t *testing.T) {
	for _, s := range []Style{StyleFirst6Last4, StyleLast4} {
		got, err := ParseStyle(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStyle(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseStyle("first4"); err == nil || !strings.Contains(err.Error(), `"first4"`) {
		t.Errorf("ParseStyle(first4): %v", err)
	}
}
