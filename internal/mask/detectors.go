package mask

import "strings"

// ibanCountries lists the countries that issue IBANs. Requiring one cuts the
// false positives of "two letters, two digits, alphanumerics" (part numbers,
// flight numbers) before mod-97 is even computed.
const ibanCountries = "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB GE GI GL GR GT " +
	"HN HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT MU NI NL NO OM PK PL PS PT QA RO RS RU " +
	"SA SC SD SE SI SK SM SO ST SV TL TN TR UA VA VG XK YE"

var ibanCountry [26 * 26]bool

func init() {
	for _, cc := range strings.Fields(ibanCountries) {
		ibanCountry[int(cc[0]-'A')*26+int(cc[1]-'A')] = true
	}
}

const (
	minIBAN = 15 // Norway
	maxIBAN = 34
)

// ibanAt looks for an IBAN whose country code starts at c; src[c+2:c+4] are
// already known to be digits. It accepts the electronic form
// ("DE89370400440532013000") and the print form in groups of four separated
// by single spaces ("DE89 3704 0044 0532 0130 00"), in either letter case.
// In print form the longest run of leading groups that validates wins, so a
// word after the IBAN ("BE68 5390 0754 7034 Bank") does not hide it.
func ibanAt(src []byte, c int) (end int, ok bool) {
	if c > 0 && isAlnum(src[c-1]) {
		return 0, false
	}
	a, b := src[c]|0x20, src[c+1]|0x20 // lower case
	if (src[c]^src[c+1])&0x20 != 0 || !ibanCountry[int(a-'a')*26+int(b-'a')] {
		return 0, false
	}
	e := c + 4
	for e < len(src) && isAlnum(src[e]) && e-c <= maxIBAN {
		e++
	}
	if e-c > 4 {
		return e, e-c >= minIBAN && e-c <= maxIBAN && ibanChecksumOK(src[c:e])
	}
	best, n := 0, 4
	for e+1 < len(src) && src[e] == ' ' && isAlnum(src[e+1]) {
		g := e + 1
		for g < len(src) && isAlnum(src[g]) && g-e <= 4 {
			g++
		}
		size := g - e - 1
		if size > 4 || n+size > maxIBAN {
			break // a longer word is not a group
		}
		n += size
		e = g
		if n >= minIBAN && ibanChecksumOK(src[c:e]) {
			best = e
		}
		if size < 4 {
			break // a short group is the last one
		}
	}
	return best, best != 0
}

// ibanChecksumOK applies ISO 13616's mod-97 check to an IBAN, skipping spaces:
// the first four characters move to the end and letters count as 10–35.
func ibanChecksumOK(b []byte) bool {
	r := 0
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case isLetter(c):
			r = (r*100 + int(c|0x20-'a') + 10) % 97
		case c == ' ':
		default:
			return false
		}
		return true
	}
	for _, c := range b[4:] {
		if !add(c) {
			return false
		}
	}
	for _, c := range b[:4] {
		add(c)
	}
	return r == 1
}

// maskIBAN keeps the country code, the check digits and the last four
// characters; spaces stay.
func maskIBAN(b []byte, c byte) {
	n := 0
	for _, x := range b {
		if isAlnum(x) {
			n++
		}
	}
	k := 0
	for i, x := range b {
		if !isAlnum(x) {
			continue
		}
		if k >= 4 && k < n-4 {
			b[i] = c
		}
		k++
	}
}

// ssnAt reports whether src[i:i+11] is a US social security number
// AAA-GG-SSSS; src[i:i+3] is a maximal digit run. Numbers the SSA never
// issues (area 000, 666 or 9xx, group 00, serial 0000) are not SSNs, and
// neither is a dash-chain longer than the SSN's own ("1-123-45-6789-0").
func ssnAt(src []byte, i int) bool {
	e := i + 11
	if e > len(src) || src[i+3] != '-' || src[i+6] != '-' ||
		!isDigit(src[i+4]) || !isDigit(src[i+5]) ||
		!isDigit(src[i+7]) || !isDigit(src[i+8]) || !isDigit(src[i+9]) || !isDigit(src[i+10]) {
		return false
	}
	if e < len(src) && (isDigit(src[e]) || src[e] == '-' && e+1 < len(src) && isDigit(src[e+1])) {
		return false
	}
	if i >= 2 && src[i-1] == '-' && isDigit(src[i-2]) {
		return false
	}
	area := string(src[i : i+3])
	return area != "000" && area != "666" && src[i] != '9' &&
		string(src[i+4:i+6]) != "00" && string(src[i+7:i+11]) != "0000"
}

// isLocalChar reports whether c may appear in the local part of an e-mail
// address as this package reads it: the dot-atom characters people actually
// use. The rarer RFC 5322 characters (!#$&'*/=?^`{|}~) are left out so that
// '*', the default mask character, ends a local part and masked output is
// not detected again.
func isLocalChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomainChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// emailAt looks for an e-mail address around the '@' at src[at] whose local
// part starts no earlier than low. It returns the address's bounds.
func emailAt(src []byte, at, low int) (start, end int, ok bool) {
	s := at
	for s > low && isLocalChar(src[s-1]) && !(src[s-1] == '.' && s-1 > low && src[s-2] == '.') {
		s--
	}
	for s < at && src[s] == '.' {
		s++ // "see...john@x.io": a dot-atom has no "..", so these dots are prose
	}
	if s == at {
		return 0, 0, false
	}
	e := at + 1
	for e < len(src) && isDomainChar(src[e]) {
		e++
	}
	for e > at+1 && (src[e-1] == '.' || src[e-1] == '-') {
		e-- // "write to john@example.com." ends the sentence, not the domain
	}
	return s, e, validDomain(src[at+1 : e])
}

// validDomain accepts a host name with at least two labels, none empty or
// edged with '-', and an alphabetic top-level label of two letters or more.
// Bare hosts ("postgres@db") are not e-mail addresses for masking purposes.
func validDomain(d []byte) bool {
	if len(d) > 253 {
		return false
	}
	labels, start := 0, 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			continue
		}
		l := d[start:i]
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		labels++
		start = i + 1
	}
	if labels < 2 {
		return false
	}
	tld := d[strings.LastIndexByte(string(d), '.')+1:]
	if len(tld) < 2 {
		return false
	}
	for _, c := range tld {
		if !isLetter(c) {
			return false
		}
	}
	return true
}

// maskEmail keeps the first character of the local part and the domain. A
// one-character local part is masked whole, so every match hides something.
func maskEmail(b []byte, c byte) {
	at := 0
	for b[at] != '@' {
		at++
	}
	from := 1
	if at == 1 {
		from = 0
	}
	for i := from; i < at; i++ {
		b[i] = c
	}
}

// maskSSN keeps the serial: ***-**-1234.
func maskSSN(b []byte, c byte) {
	for _, i := range [...]int{0, 1, 2, 4, 5} {
		b[i] = c
	}
}
