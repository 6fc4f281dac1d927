package record

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"
)

// resultChunk is a chunk as the 1,000,000-row benchmark SELECT fills it
// (bench/pgbench.sh): an id, a masked card number, a note and a timestamp
// per row, a few hundred nanoseconds apart.
func resultChunk() []byte {
	base := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC).UnixNano()
	b := appendHeader(nil, "bench", 0, base)
	for i := 1; len(b) < DefaultChunkBytes; i++ {
		b = append(b, byte(EntryRow))
		b = binary.AppendUvarint(b, uint64(250+i%97))
		b = binary.AppendUvarint(b, 4)
		for _, v := range []string{fmt.Sprint(i), "411111******1111", fmt.Sprint("order ", i), "2026-12-07 07:19:32.123456+00"} {
			b = appendNullable(b, []byte(v))
		}
	}
	return b
}

// compressChunk compresses raw into g as the recorder does, a segment at a
// time; segments of size 0 take the recorder's.
func compressChunk(g *gzipMember, raw []byte, segment int) error {
	if segment == 0 {
		segment = segmentBytes
	}
	for len(raw) > segment {
		if err := g.add(raw[:segment], false); err != nil {
			return err
		}
		raw = raw[segment:]
	}
	return g.add(raw, true)
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	br := bytes.NewReader(data) // a ByteReader: gzip reads no further than the member
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false) // a chunk is one member
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q, time %v; want neither", zr.Name, zr.ModTime)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if br.Len() != 0 {
		t.Errorf("%d bytes after the member", br.Len())
	}
	return got
}

// Chunks must stay plain gzip that the standard library reads, whatever
// their segments: recordings are replayed and verified with it, and
// chunks written before the compressor changed are read the same way.
func TestChunksAreStandardGzip(t *testing.T) {
	random := make([]byte, 300<<10)
	rand.Read(random)
	for _, tc := range []struct {
		name     string
		raw      []byte
		segment  int
		minRatio int
	}{
		{"result rows, recorder's segments", resultChunk(), 0, 8},
		{"result rows, one segment", resultChunk(), DefaultChunkBytes + 1, 8},
		{"result rows, odd segments", resultChunk(), 7919, 4},
		{"random bytes", random, 0, 0},
		{"an empty last segment", resultChunk()[:2*segmentBytes], segmentBytes, 4},
		{"one byte", []byte{'x'}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g gzipMember
			for range 2 { // the second time into the same buffer, reset
				g.reset(g.data)
				if err := compressChunk(&g, tc.raw, tc.segment); err != nil {
					t.Fatal(err)
				}
				if tc.minRatio > 0 && len(g.data)*tc.minRatio > len(tc.raw) {
					t.Errorf("compressed %d bytes to %d: less than %d to 1", len(tc.raw), len(g.data), tc.minRatio)
				}
				if got := gunzip(t, g.data); !bytes.Equal(got, tc.raw) {
					t.Fatalf("chunk decompresses to %d bytes that differ from the %d compressed", len(got), len(tc.raw))
				}
			}
		})
	}
}

// BenchmarkCompressChunk is the recorder's compression of one full chunk
// of result rows, a segment at a time, the largest cost of recording a
// large result.
func BenchmarkCompressChunk(b *testing.B) {
	raw := resultChunk()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var g gzipMember
	for b.Loop() {
		g.reset(g.data)
		if err := compressChunk(&g, raw, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw))/float64(len(g.data)), "ratio")
}
