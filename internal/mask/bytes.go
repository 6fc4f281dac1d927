package mask

import (
	"encoding/binary"
	"math/bits"
)

func isDigit(c byte) bool { return c-'0' < 10 }

func isLetter(c byte) bool { return (c|0x20)-'a' < 26 }

func isAlnum(c byte) bool { return isDigit(c) || isLetter(c) }

func isHex(c byte) bool { return isDigit(c) || (c|0x20)-'a' < 6 }

// The scanner looks at eight bytes per step (SWAR: SIMD within a register).
// Prose, JSON keys and identifiers are mostly neither digits nor '@', so the
// common case is one load and a handful of ALU operations per eight bytes.
const (
	ones = 0x0101010101010101
	low7 = 0x7f7f7f7f7f7f7f7f
	high = 0x8080808080808080
)

// digitBits sets the high bit of each byte of w that is an ASCII digit, and
// only those: the additions cannot carry across bytes because the operands
// are at most 0x7f+0x50.
func digitBits(w uint64) uint64 {
	x := w & low7
	atLeast0 := x + ones*(0x80-'0')
	above9 := x + ones*(0x7f-'9')
	return atLeast0 &^ above9 &^ w & high
}

// equalBits sets the high bit of each byte of w equal to c, exactly (the
// classic haszero trick without its false positives).
func equalBits(w uint64, c byte) uint64 {
	y := w ^ (ones * uint64(c))
	return ^(((y & low7) + low7) | y) & high
}

// rangeBits sets the high bit of each byte of w in [lo, hi] (ASCII only);
// addLo and addHi are ones*(0x80-lo) and ones*(0x7f-hi).
func rangeBits(w, addLo, addHi uint64) uint64 {
	x := w & low7
	return (x + addLo) &^ (x + addHi) &^ w & high
}

// packHigh gathers the high bit of each byte of x into one byte, byte k's
// bit going to bit k. The multiplier's partial products land on distinct bit
// positions, so nothing carries into the top byte.
func packHigh(x uint64) uint64 { return (x >> 7) * 0x0102040810204080 >> 56 }

// cursor walks src in 64-byte blocks and keeps, for the current block, a
// bitmap of digits and one of '@' (bit k is src[base+k]). Finding the next
// token and the end of a run are then bit operations, not byte loads: in
// text and CSV most digit runs are short and close together, and the per-run
// cost, not the per-byte cost, is what a scanner of such input pays.
type cursor struct {
	src       []byte
	base      int
	digit, at uint64
	// Words without a byte in [lo, hi] (lo '0' or '@', hi '9' or '@') hold
	// nothing of interest and cost one range test.
	addLo, addHi      uint64
	digitMask, atMask uint64
}

func newCursor(src []byte, digits, at bool) cursor {
	c := cursor{src: src, base: -64}
	lo, hi := byte('@'), byte('9')
	if digits {
		lo, c.digitMask = '0', ^uint64(0)
	}
	if at {
		hi, c.atMask = '@', ^uint64(0)
	}
	c.addLo, c.addHi = ones*uint64(0x80-lo), ones*uint64(0x7f-hi)
	return c
}

// load classifies src[base:base+64]; bytes past the end of src count as
// neither digits nor '@'. Short values (most column values) classify only
// the words they have.
func (c *cursor) load(base int) {
	blk := c.src[base:min(base+64, len(c.src))]
	var d, a uint64
	k := 0
	for ; k+8 <= len(blk); k += 8 {
		// Hand-inlined (a helper is past the inliner's budget): this loop is
		// the whole cost of text.
		w := binary.LittleEndian.Uint64(blk[k:])
		if rangeBits(w, c.addLo, c.addHi) != 0 {
			d |= packHigh(digitBits(w)&c.digitMask) << k
			a |= packHigh(equalBits(w, '@')&c.atMask) << k
		}
	}
	if k < len(blk) {
		var tail [8]byte
		copy(tail[:], blk[k:])
		w := binary.LittleEndian.Uint64(tail[:])
		d |= packHigh(digitBits(w)&c.digitMask) << k
		a |= packHigh(equalBits(w, '@')&c.atMask) << k
	}
	c.base, c.digit, c.at = base, d, a
}

// token returns the first token at or after i: the digit run src[start:end],
// or an '@' at start with end == start. ok is false when none is left.
func (c *cursor) token(i int) (start, end int, ok bool) {
	for i < len(c.src) {
		if i-c.base >= 64 {
			c.load(i)
		}
		k := uint(i - c.base)
		m := (c.digit | c.at) >> k << k
		if m == 0 {
			i = c.base + 64
			continue
		}
		k = uint(bits.TrailingZeros64(m))
		start = c.base + int(k)
		if c.at>>k&1 == 1 {
			return start, start, true
		}
		if nd := ^c.digit >> k; nd != 0 {
			return start, start + bits.TrailingZeros64(nd), true
		}
		return start, digitRunEnd(c.src, c.base+64), true
	}
	return 0, 0, false
}

// digitRunEnd returns the index of the first non-digit at or after i.
func digitRunEnd(src []byte, i int) int {
	for ; i+8 <= len(src); i += 8 {
		w := binary.LittleEndian.Uint64(src[i:])
		if m := ^digitBits(w) & high; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	return i
}
