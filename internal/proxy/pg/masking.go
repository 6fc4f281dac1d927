package pg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/mask"
)

// Type OIDs whose binary form is not the text bytes, but which can carry a
// card number: those are decoded before scanning.
const (
	oidInt8    = 20
	oidNumeric = 1700
)

// cannotCarryPAN reports whether values of a type cannot hold a card number
// in text or binary form, so that scanning them is wasted: fixed-width
// integers of at most ten digits, booleans, dates and times (whose digits
// come in groups of at most four, with separators no detector accepts
// inside a card number). Anything wider or free-form (int8, numeric,
// floats, text, json, uuid, arrays, records, unknown types) is scanned.
func cannotCarryPAN(oid uint32) bool {
	switch oid {
	case 16, 21, 23, 26, // bool, int2, int4, oid
		1082, 1083, 1114, 1184: // date, time, timestamp, timestamptz
		return true
	}
	return false
}

// errUnmaskable is returned when a value could carry sensitive data but
// cannot be masked in its wire form (a card number in a binary bigint):
// the row is withheld and the session ends (fail closed).
var errUnmaskable = errors.New("a value cannot be masked in its binary form")

// column is what masking needs to know of one result column.
type column struct {
	typeOID  uint32
	format   int16         // from RowDescription; Bind's codes override for Execute
	strategy mask.Strategy // 0: detectors only
	// clear: nothing to mask in this column's values, whatever their
	// format (no strategy, and a type that cannot carry a card number).
	// Only trusted when the row has exactly the described columns.
	clear bool
}

func newColumn(typeOID uint32, format int16, strategy mask.Strategy) column {
	return column{
		typeOID: typeOID, format: format, strategy: strategy,
		clear: strategy == 0 && cannotCarryPAN(typeOID),
	}
}

// rowDesc is a parsed RowDescription.
type rowDesc struct {
	cols []column
}

// parseRowDesc parses a RowDescription body and attaches column strategies.
func parseRowDesc(body []byte, rules map[colKey]mask.Strategy) (*rowDesc, error) {
	if len(body) < 2 {
		return nil, errors.New("short RowDescription")
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	rd := &rowDesc{cols: make([]column, n)}
	for i := 0; i < n; i++ {
		_, r, ok := cstring(rest)
		if !ok || len(r) < 18 {
			return nil, errors.New("malformed RowDescription")
		}
		table := binary.BigEndian.Uint32(r)
		att := int16(binary.BigEndian.Uint16(r[4:]))
		rd.cols[i] = newColumn(binary.BigEndian.Uint32(r[6:]), int16(binary.BigEndian.Uint16(r[16:])), rules[colKey{table, att}])
		rest = r[18:]
	}
	return rd, nil
}

// rowMasker masks DataRow messages. It belongs to the target→client
// direction; its buffers are reused across rows.
type rowMasker struct {
	m       *mask.Masker
	out     []byte // rebuilt DataRow body
	scratch []byte
	masked  int // values masked since the last take
	// vals are the values of the row maskDataRow last returned (nil for
	// NULL), so that the recorder need not split it again. They alias that
	// row or body, and hold until the next call: an append that moves out
	// leaves what it had written in place.
	vals [][]byte
}

// maskDataRow returns the DataRow body to send: body itself when nothing
// needed masking (the common case, no copy), or a rebuilt body valid until
// the next call. desc may be nil (unknown statement): detectors still apply.
func (rm *rowMasker) maskDataRow(body []byte, desc *rowDesc, formats []int16, useBind bool) ([]byte, error) {
	if len(body) < 2 {
		return nil, errors.New("short DataRow")
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	rebuilt := false
	rm.vals = rm.vals[:0]
	// Types let values go unscanned (cannotCarryPAN) only when the row has
	// exactly the described columns: a description that does not fit the
	// row cannot be trusted to say what the values are.
	typed := desc != nil && len(desc.cols) == n
	var start int // offset in body where the current value's length starts
	for i := 0; i < n; i++ {
		if len(rest) < 4 {
			return nil, errors.New("malformed DataRow")
		}
		start = len(body) - len(rest)
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			if rebuilt {
				rm.out = binary.BigEndian.AppendUint32(rm.out, uint32(l))
			}
			rm.vals = append(rm.vals, nil)
			continue
		}
		if int(l) > len(rest) {
			return nil, errors.New("malformed DataRow")
		}
		val := rest[:l]
		rest = rest[l:]

		var col column
		if desc != nil && i < len(desc.cols) {
			col = desc.cols[i]
		}
		if typed && col.clear {
			if rebuilt {
				rm.out = binary.BigEndian.AppendUint32(rm.out, uint32(l))
				rm.out = append(rm.out, val...)
			}
			rm.vals = append(rm.vals, val)
			continue
		}
		format := col.format
		if useBind {
			format = formatOf(formats, i)
		}
		newVal, isNull, changed, err := rm.maskValue(val, col, format)
		if err != nil {
			return nil, err
		}
		if changed && !rebuilt {
			rm.out = append(rm.out[:0], body[:start]...)
			rebuilt = true
		}
		if !rebuilt {
			rm.vals = append(rm.vals, val)
			continue
		}
		if isNull {
			rm.out = binary.BigEndian.AppendUint32(rm.out, 0xffffffff)
			rm.vals = append(rm.vals, nil)
			continue
		}
		rm.out = binary.BigEndian.AppendUint32(rm.out, uint32(len(newVal)))
		rm.out = append(rm.out, newVal...)
		rm.vals = append(rm.vals, rm.out[len(rm.out)-len(newVal):])
	}
	if !rebuilt {
		return body, nil
	}
	return rm.out, nil
}

// maskValue masks one column value that may need it (not col.clear).
// newVal is valid until the next call.
func (rm *rowMasker) maskValue(val []byte, col column, format int16) (newVal []byte, isNull, changed bool, err error) {
	if format == 1 && (col.typeOID == oidInt8 || col.typeOID == oidNumeric) {
		text, err := binaryNumberText(rm.scratch[:0], val, col.typeOID)
		if err != nil {
			return nil, false, false, err
		}
		rm.scratch = text
		if col.strategy != 0 {
			// A strategy's output is text; a binary number cannot hold it.
			rm.masked++
			return nil, true, true, nil
		}
		if rm.m.Scan(text) {
			return nil, false, false, fmt.Errorf("%w: a %s column holds a card number", errUnmaskable, typeName(col.typeOID))
		}
		return val, false, false, nil
	}
	if col.strategy != 0 {
		out, null := rm.m.AppendStrategy(rm.scratch[:0], val, col.strategy)
		rm.scratch = out
		rm.masked++
		return out, null, true, nil
	}
	// Text values, and binary values of text-like types (text, varchar,
	// json, jsonb, arrays and records of them carry their text bytes), are
	// scanned as they are. Card masks keep the length, so a binary encoding
	// stays valid.
	out, found := rm.m.AppendMaskIfFound(rm.scratch[:0], val)
	if found == 0 {
		return val, false, false, nil
	}
	rm.scratch = out
	if format == 1 && len(out) != len(val) {
		// A length-changing mask (a custom detector) would corrupt a
		// binary encoding's inner lengths.
		return nil, false, false, fmt.Errorf("%w: a masked value changed length in a binary column", errUnmaskable)
	}
	rm.masked += found
	return out, false, true, nil
}

func typeName(oid uint32) string {
	if oid == oidInt8 {
		return "bigint"
	}
	return "numeric"
}

// binaryNumberText renders a binary int8 or numeric value as decimal text.
func binaryNumberText(dst, val []byte, oid uint32) ([]byte, error) {
	if oid == oidInt8 {
		if len(val) != 8 {
			return nil, errors.New("binary bigint is not 8 bytes")
		}
		return strconv.AppendInt(dst, int64(binary.BigEndian.Uint64(val)), 10), nil
	}
	// numeric: ndigits, weight, sign, dscale (int16 each), then base-10000
	// digits. Only the digit string matters for detection.
	if len(val) < 8 {
		return nil, errors.New("short binary numeric")
	}
	nd := int(binary.BigEndian.Uint16(val))
	weight := int(int16(binary.BigEndian.Uint16(val[2:])))
	if len(val) != 8+2*nd {
		return nil, errors.New("malformed binary numeric")
	}
	if nd == 0 {
		return append(dst, '0'), nil
	}
	// Integer part: digits 0..weight; fractional digits after a '.'.
	v := new(big.Int)
	for i := 0; i < nd && i <= weight; i++ {
		v.Mul(v, big.NewInt(10000))
		v.Add(v, big.NewInt(int64(binary.BigEndian.Uint16(val[8+2*i:]))))
	}
	for i := nd; i <= weight; i++ {
		v.Mul(v, big.NewInt(10000))
	}
	dst = v.Append(dst, 10)
	if nd > weight+1 {
		dst = append(dst, '.')
		for i := max(weight+1, 0); i < nd; i++ {
			dst = fmt.Appendf(dst, "%04d", binary.BigEndian.Uint16(val[8+2*i:]))
		}
	}
	return dst, nil
}

// maskFields masks the text fields of an ErrorResponse or NoticeResponse
// (message, detail, hint, context, ...): a duplicate-key DETAIL echoes the
// offending value. Returns body itself when nothing changed.
func (rm *rowMasker) maskFields(body []byte) ([]byte, error) {
	if !rm.m.Scan(body) {
		return body, nil
	}
	out := rm.out[:0]
	rest := body
	for len(rest) > 0 && rest[0] != 0 {
		code := rest[0]
		v, r, ok := cstring(rest[1:])
		if !ok {
			return nil, errors.New("malformed error fields")
		}
		rest = r
		out = append(out, code)
		if rm.m.Scan(v) {
			var n int
			out, n = rm.m.AppendMask(out, v)
			rm.masked += n
		} else {
			out = append(out, v...)
		}
		out = append(out, 0)
	}
	out = append(out, 0)
	rm.out = out
	return out, nil
}

// maskNotification masks a NotificationResponse payload.
func (rm *rowMasker) maskNotification(body []byte) ([]byte, error) {
	if len(body) < 4 || !rm.m.Scan(body[4:]) {
		return body, nil
	}
	ch, rest, ok := cstring(body[4:])
	if !ok {
		return nil, errors.New("malformed NotificationResponse")
	}
	payload, _, ok := cstring(rest)
	if !ok {
		return nil, errors.New("malformed NotificationResponse")
	}
	out := append(rm.out[:0], body[:4]...)
	out = append(out, ch...)
	out = append(out, 0)
	var n int
	out, n = rm.m.AppendMask(out, payload)
	rm.masked += n
	out = append(out, 0)
	rm.out = out
	return out, nil
}

// maskCopyData masks one CopyData message of COPY TO STDOUT. PostgreSQL
// sends one row per message, so values are never split across messages.
func (rm *rowMasker) maskCopyData(body []byte, binaryCopy bool) ([]byte, error) {
	out, n := rm.m.AppendMaskIfFound(rm.out[:0], body)
	if n == 0 {
		return body, nil
	}
	if binaryCopy && len(out) != len(body) {
		return nil, fmt.Errorf("%w: a masked value changed length in binary COPY", errUnmaskable)
	}
	rm.masked += n
	rm.out = out
	return out, nil
}
