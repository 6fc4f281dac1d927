package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// seedChunk is a decompressed chunk with one entry of every type.
func seedChunk() []byte {
	b := appendHeader(nil, "s1", 3, 1_733_000_000_000_000_000)
	entry := func(typ EntryType, dt uint64) {
		b = append(b, byte(typ))
		b = binary.AppendUvarint(b, dt)
	}
	entry(EntryMeta, 0)
	for _, s := range []string{"ci-agent", "shop", "reader", "shop", "10.0.0.7:5000", "postgres"} {
		b = appendStr(b, s)
	}
	entry(EntryClient, 10)
	b = appendStr(b, "bind")
	b = appendStr(b, "select * from payments where id = $1")
	b = binary.AppendUvarint(b, 2)
	p := "42"
	b = appendNullableStr(b, &p)
	b = appendNullableStr(b, nil)
	entry(EntryColumns, 5)
	b = binary.AppendUvarint(b, 2)
	b = appendStr(b, "id")
	b = appendStr(b, "pan")
	entry(EntryRow, 7)
	b = binary.AppendUvarint(b, 2)
	b = appendNullable(b, []byte("42"))
	b = appendNullable(b, []byte("411111******1111"))
	entry(EntryResult, 1)
	b = appendStr(b, "SELECT 1")
	entry(EntryError, 1)
	b = appendStr(b, "42501")
	b = appendStr(b, "permission denied")
	entry(EntryNotice, 1)
	b = appendStr(b, "hello")
	entry(EntryTruncated, 1)
	b = binary.AppendUvarint(b, 64<<20)
	entry(EntryEnd, 1)
	b = binary.AppendUvarint(b, 3)
	return binary.AppendUvarint(b, 300)
}

// errNoProgress is an entry that consumed none of the chunk.
var errNoProgress = errors.New("entry consumed nothing")

// decodeAll decodes a whole decompressed chunk, as Reader does, into its
// entries' types.
func decodeAll(raw []byte) (session string, seq int64, types []EntryType, err error) {
	d := decoder{b: raw}
	session, seq, at, err := d.header()
	if err != nil {
		return session, seq, nil, err
	}
	for len(d.b) > 0 {
		before := len(d.b)
		e, err := d.entry(&at)
		if err != nil {
			return session, seq, types, err
		}
		if len(d.b) >= before {
			return session, seq, types, fmt.Errorf("%w: entry %d (%v)", errNoProgress, len(types), e.Type)
		}
		types = append(types, e.Type)
	}
	return session, seq, types, nil
}

// FuzzDecodeChunk feeds the chunk decoder arbitrary decompressed bytes, as
// a chunk forged together with its digests would reach it. It must not
// panic, must make progress with every entry (no loop), and must decode a
// chunk the recorder writes entirely.
func FuzzDecodeChunk(f *testing.F) {
	seed := seedChunk()
	f.Add(seed)
	f.Add(seed[:len(seed)-1])
	f.Add(resultChunk()[:4096])
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, _, _, err := decodeAll(raw); errors.Is(err, errNoProgress) {
			t.Fatal(err)
		}
	})
}

// The seed chunk decodes whole: the fuzzer starts from valid input.
func TestSeedChunkDecodes(t *testing.T) {
	session, seq, types, err := decodeAll(seedChunk())
	if err != nil || session != "s1" || seq != 3 {
		t.Fatalf("after %v: session %q, seq %d: %v", types, session, seq, err)
	}
	if len(types) != 9 {
		t.Fatalf("decoded %d entries (%v), want 9", len(types), types)
	}
}
