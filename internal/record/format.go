package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// EntryType is an entry's type byte (see the package doc). EntryDamaged is
// not in the format: readers produce it where a chunk failed verification.
type EntryType byte

// The entry types. Their bytes are part of the stored format: never change
// one.
const (
	EntryMeta      EntryType = 'M'
	EntryClient    EntryType = 'Q'
	EntryColumns   EntryType = 'T'
	EntryRow       EntryType = 'D'
	EntryResult    EntryType = 'C'
	EntryError     EntryType = 'E'
	EntryNotice    EntryType = 'N'
	EntryTruncated EntryType = '!'
	EntryEnd       EntryType = 'Z'
	EntryDamaged   EntryType = 0
)

func (t EntryType) String() string {
	switch t {
	case EntryMeta:
		return "meta"
	case EntryClient:
		return "client"
	case EntryColumns:
		return "columns"
	case EntryRow:
		return "row"
	case EntryResult:
		return "result"
	case EntryError:
		return "error"
	case EntryNotice:
		return "notice"
	case EntryTruncated:
		return "truncated"
	case EntryEnd:
		return "end"
	case EntryDamaged:
		return "damaged"
	}
	return fmt.Sprintf("EntryType(%#x)", byte(t))
}

// Entry is one decoded entry. Which fields are set depends on Type.
type Entry struct {
	Type  EntryType
	Time  time.Time // UTC
	Chunk int64     // the chunk it was read from

	Meta     *Meta     // EntryMeta
	Kind     string    // EntryClient: query, parse, bind, execute, copy, …
	Text     string    // EntryClient: statement or data; EntryResult: command tag; EntryError, EntryNotice: message; EntryDamaged: what failed
	Params   []*string // EntryClient; a nil element is SQL NULL
	SQLState string    // EntryError
	Names    []string  // EntryColumns
	Values   [][]byte  // EntryRow; a nil element is SQL NULL

	Limit          int64 // EntryTruncated: the size cap that was reached
	DroppedEntries int64 // EntryEnd
	DroppedBytes   int64 // EntryEnd
}

const (
	magic   = "GHRC"
	version = 1
)

// appendHeader starts a chunk.
func appendHeader(b []byte, session string, seq int64, base int64) []byte {
	b = append(b, magic...)
	b = append(b, version)
	b = appendStr(b, session)
	b = binary.AppendUvarint(b, uint64(seq))
	return binary.AppendVarint(b, base)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendNullable(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

func appendNullableStr(b []byte, v *string) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(*v))+1)
	return append(b, *v...)
}

// uvarintLen is the encoded size of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func strLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// errShort is a chunk that ends inside an entry.
var errShort = errors.New("chunk ends inside an entry")

// decoder reads one decompressed chunk.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes(d.uvarint())) }

// nullable returns a copy, so entries do not pin the chunk.
func (d *decoder) nullable() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	v := d.bytes(n - 1)
	if d.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...) // non-nil even when empty: '' is not NULL
}

// count reads an element count, refusing counts the rest of the chunk
// cannot hold (each element takes at least one byte), so a damaged count
// cannot make the reader allocate without bound.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errShort
		return 0
	}
	return int(n)
}

// header reads the chunk header.
func (d *decoder) header() (session string, seq, base int64, err error) {
	if !bytes.HasPrefix(d.b, []byte(magic)) {
		return "", 0, 0, errors.New("not a recording chunk")
	}
	d.b = d.b[len(magic):]
	if len(d.b) == 0 || d.b[0] != version {
		return "", 0, 0, errors.New("unknown chunk version")
	}
	d.b = d.b[1:]
	session = d.str()
	seq = int64(d.uvarint())
	base = d.varint()
	return session, seq, base, d.err
}

// entry decodes the next entry; at is the previous entry's time in Unix
// nanoseconds and is advanced.
func (d *decoder) entry(at *int64) (Entry, error) {
	typ := EntryType(d.b[0])
	d.b = d.b[1:]
	*at += int64(d.uvarint())
	e := Entry{Type: typ, Time: time.Unix(0, *at).UTC()}
	switch typ {
	case EntryMeta:
		m := &Meta{}
		m.Principal, m.Connection, m.Role = d.str(), d.str(), d.str()
		m.Database, m.Source, m.Protocol = d.str(), d.str(), d.str()
		m.Started = e.Time
		e.Meta = m
	case EntryClient:
		e.Kind, e.Text = d.str(), d.str()
		n := d.count()
		if n > 0 {
			e.Params = make([]*string, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			if v := d.nullable(); v != nil {
				s := string(v)
				e.Params[i] = &s
			}
		}
	case EntryColumns:
		n := d.count()
		e.Names = make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			e.Names = append(e.Names, d.str())
		}
	case EntryRow:
		n := d.count()
		e.Values = make([][]byte, n)
		for i := 0; i < n && d.err == nil; i++ {
			e.Values[i] = d.nullable()
		}
	case EntryResult:
		e.Text = d.str()
	case EntryError:
		e.SQLState, e.Text = d.str(), d.str()
	case EntryNotice:
		e.Text = d.str()
	case EntryTruncated:
		e.Limit = int64(d.uvarint())
	case EntryEnd:
		e.DroppedEntries, e.DroppedBytes = int64(d.uvarint()), int64(d.uvarint())
	default:
		return Entry{}, fmt.Errorf("unknown entry type %#x", byte(typ))
	}
	return e, d.err
}
