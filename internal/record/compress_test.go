package record

import (
	"bytes"
	"compress/gzip"
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

// Chunks must stay plain gzip that the standard library reads: recordings
// are replayed and verified with it, and chunks written before the
// compressor changed are read the same way.
func TestChunksAreStandardGzip(t *testing.T) {
	raw := resultChunk()
	z := gzipWriters.Get().(*gzipBuf)
	defer gzipWriters.Put(z)
	var data []byte
	for range 2 { // the second time through a reset writer, into the same buffer
		var err error
		data, err = z.compress(data[:0], raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(data)*8 > len(raw) {
			t.Errorf("compressed %d bytes to %d: less than 8 to 1 on repetitive rows", len(raw), len(data))
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if zr.Name != "" || !zr.ModTime.IsZero() {
			t.Errorf("gzip header has name %q, time %v; want neither", zr.Name, zr.ModTime)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) {
			t.Fatal("chunk does not decompress to what was compressed")
		}
	}
}

// BenchmarkCompressChunk is the recorder's compression of one full chunk
// of result rows, the largest cost of recording a large result.
func BenchmarkCompressChunk(b *testing.B) {
	raw := resultChunk()
	z := gzipWriters.Get().(*gzipBuf)
	defer gzipWriters.Put(z)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var data []byte
	for b.Loop() {
		var err error
		if data, err = z.compress(data[:0], raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw))/float64(len(data)), "ratio")
}
