package mask

// network is one card scheme's issuer identification ranges and the PAN
// lengths it issues. The table below is the single source of truth; the fast
// prefix table is derived from it at init so the two cannot drift.
type network struct {
	name    string
	ranges  []iinRange
	lengths []int
}

// iinRange is an inclusive range of issuer prefixes. lo and hi have the same
// number of digits, so comparing them as strings compares them as numbers.
type iinRange struct{ lo, hi string }

var networks = []network{
	{"visa", []iinRange{{"4", "4"}}, []int{13, 16, 19}},
	{"mastercard", []iinRange{{"51", "55"}, {"2221", "2720"}}, []int{16}},
	{"amex", []iinRange{{"34", "34"}, {"37", "37"}}, []int{15}},
	{"discover", []iinRange{{"6011", "6011"}, {"644", "649"}, {"65", "65"}, {"622126", "622925"}}, lengthRange(16, 19)},
	{"jcb", []iinRange{{"3528", "3589"}}, lengthRange(16, 19)},
	{"diners", []iinRange{{"300", "305"}, {"36", "36"}, {"38", "39"}}, lengthRange(14, 19)},
	{"unionpay", []iinRange{{"62", "62"}}, lengthRange(16, 19)},
	{"maestro", []iinRange{{"50", "50"}, {"56", "69"}}, lengthRange(12, 19)},
	{"mir", []iinRange{{"2200", "2204"}}, []int{16}},
}

func lengthRange(lo, hi int) []int {
	var l []int
	for n := lo; n <= hi; n++ {
		l = append(l, n)
	}
	return l
}

const (
	minPAN = 12
	maxPAN = 19
)

// prefixLengths maps the first four digits of a candidate to a bit set of
// plausible lengths (bit n-minPAN). It lets the scanner reject most long
// digit runs (timestamps, ids) with one load. A miss is final; a hit is
// exact too, unless prefixInexact says that a range longer than four digits
// (Discover's 622126–622925) overlaps the prefix, and then networkOf
// confirms it.
var (
	prefixLengths [10000]uint8
	prefixInexact [10000]bool
)

func init() {
	var p [4]byte
	for i := range prefixLengths {
		p[0], p[1], p[2], p[3] = byte('0'+i/1000), byte('0'+i/100%10), byte('0'+i/10%10), byte('0'+i%10)
		for _, nw := range networks {
			for _, r := range nw.ranges {
				if !overlaps(p[:], r) {
					continue
				}
				for _, n := range nw.lengths {
					prefixLengths[i] |= 1 << (n - minPAN)
				}
				if len(r.lo) > len(p) {
					prefixInexact[i] = true
				}
			}
		}
	}
}

// overlaps reports whether some number starting with the four digits p falls
// in r.
func overlaps(p []byte, r iinRange) bool {
	k := min(len(p), len(r.lo))
	lo, hi, pre := r.lo[:k], r.hi[:k], string(p[:k])
	return lo <= pre && pre <= hi
}

// networkOf returns the name of the card network that issues PANs like the
// ASCII digits d, or "" if none does.
func networkOf(d []byte) string {
	for _, nw := range networks {
		if !hasLength(nw.lengths, len(d)) {
			continue
		}
		for _, r := range nw.ranges {
			if len(d) >= len(r.lo) {
				pre := string(d[:len(r.lo)])
				if r.lo <= pre && pre <= r.hi {
					return nw.name
				}
			}
		}
	}
	return ""
}

func hasLength(lengths []int, n int) bool {
	for _, l := range lengths {
		if l == n {
			return true
		}
	}
	return false
}

// luhnDoubled[d] is the Luhn contribution of digit d in a doubled position.
var luhnDoubled = [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}

// luhnValid reports whether the ASCII digits d pass the Luhn check.
func luhnValid(d []byte) bool {
	sum := 0
	n := len(d)
	for i := n - 1; i >= 0; i -= 2 {
		sum += int(d[i] - '0')
	}
	for i := n - 2; i >= 0; i -= 2 {
		sum += luhnDoubled[d[i]-'0']
	}
	return sum%10 == 0
}

// validPAN reports whether the ASCII digits d (12–19 of them) are a PAN a
// known network issues: prefix and length first because they reject far more
// candidates per nanosecond than Luhn does.
func validPAN(d []byte) bool {
	p := int(d[0]-'0')*1000 + int(d[1]-'0')*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	if prefixLengths[p]&(1<<(len(d)-minPAN)) == 0 {
		return false
	}
	return luhnValid(d) && (!prefixInexact[p] || networkOf(d) != "")
}

// contiguousPAN reports whether the digit run src[i:j] (maximal, so bounded by
// non-digits) is a PAN. Letters next to the run do not disqualify it: in
// "x4111111111111111" the card number is as exposed as anywhere else.
func contiguousPAN(src []byte, i, j int) bool {
	if !validPAN(src[i:j]) {
		return false
	}
	// An E.164 phone number has at most 15 digits after its '+'.
	if i > 0 && src[i-1] == '+' && j-i <= 15 {
		return false
	}
	// Digits joined to other digits by '.' are a decimal or dotted number
	// (a float8's 17 significant digits hit the tables often), not a PAN.
	if i >= 2 && src[i-1] == '.' && isDigit(src[i-2]) {
		return false
	}
	if j+1 < len(src) && src[j] == '.' && isDigit(src[j+1]) {
		return false
	}
	return !inHexBlob(src, i, j) && !inUUID(src, i, j)
}

// groupedPAN looks for a PAN written in groups with one consistent separator
// (all spaces or all dashes) whose first group is the four digits at
// src[i:i+4]; src[i+4] is the separator. Later groups have 1–6 digits. A group
// that does not fit ends the grouping, and the longest run of leading groups
// that is a PAN wins, so "4111 1111 1111 1111 2027" still masks the card. It
// returns the end of the match.
func groupedPAN(src []byte, i int) (end int, ok bool) {
	var digits [maxPAN]byte
	var ends [maxPAN + 1]int // ends[n] is where the groups holding n digits end; 0 if none do
	copy(digits[:], src[i:i+4])
	nd := 4
	sep := src[i+4]
	k := i + 4
	for k+1 < len(src) && src[k] == sep && isDigit(src[k+1]) {
		e := digitRunEnd(src, k+1)
		g := e - (k + 1)
		if g > 6 || nd+g > maxPAN {
			break
		}
		copy(digits[nd:], src[k+1:e])
		nd += g
		ends[nd] = e
		k = e
	}
	for n := nd; n >= minPAN; n-- {
		if ends[n] != 0 && validPAN(digits[:n]) && !inUUID(src, i, ends[n]) {
			return ends[n], true
		}
	}
	return 0, false
}

// inHexBlob reports whether src[i:j] lies inside a run of at least 32 hex
// characters: a digest, a bytea in hex output, a dashless UUID. Digits in
// those are noise, and without this rule about one SHA-256 in two thousand
// would come out with a "card number" masked.
func inHexBlob(src []byte, i, j int) bool {
	const blob = 32
	l, r := i, j
	for l > 0 && r-l < blob && isHex(src[l-1]) {
		l--
	}
	for r < len(src) && r-l < blob && isHex(src[r]) {
		r++
	}
	return r-l >= blob
}

// inUUID reports whether src[i:j] lies inside a UUID in its 8-4-4-4-12 form,
// whose last group alone can be twelve digits.
func inUUID(src []byte, i, j int) bool {
	const n = 36
	for u := max(0, j-n); u <= i && u+n <= len(src); u++ {
		if isUUID(src[u:u+n]) &&
			(u == 0 || !isHex(src[u-1])) &&
			(u+n == len(src) || !isHex(src[u+n])) {
			return true
		}
	}
	return false
}

func isUUID(b []byte) bool {
	for k, c := range b {
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if c != '-' {
				return false
			}
		} else if !isHex(c) {
			return false
		}
	}
	return true
}

// minHidden is how many characters a partial mask always hides. Without it
// first6-last4 on a 12-digit PAN would show ten of its twelve digits, and
// last4 on a four-digit PIN would show all of it.
const minHidden = 5

// shown returns how many of n maskable characters stay visible at the front
// and at the back under style: at most 6 and 4 (PCI DSS 3.4.1: BIN and last
// four), fewer when n is small so that minHidden always stay hidden.
func shown(n int, style Style) (first, last int) {
	last = min(4, max(0, n-minHidden))
	if style == StyleFirst6Last4 {
		first = min(6, max(0, n-last-minHidden))
	}
	return first, last
}

// maskDigits replaces the digits of b with c, except the first and last ones
// shown under style; separators stay, so the length does not change.
func maskDigits(b []byte, style Style, c byte) {
	n := 0
	for _, x := range b {
		if isDigit(x) {
			n++
		}
	}
	first, last := shown(n, style)
	k := 0
	for i, x := range b {
		if !isDigit(x) {
			continue
		}
		if k >= first && k < n-last {
			b[i] = c
		}
		k++
	}
}
