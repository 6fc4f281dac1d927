package record

import (
	"encoding/binary"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/flate"
)

// segmentBytes is how much of a chunk is compressed at a time. The
// recorder compresses its entries as they reach this size, on the
// goroutine that records them, so that they are compressed while they are
// still in that core's cache: a whole chunk built first and compressed
// later by another goroutine was written to memory and read back from it,
// which cost a large result more than the compression itself. Deflate
// looks back 32 KiB at most, so segments of twice that lose little of the
// ratio by starting afresh.
const segmentBytes = 64 << 10

// flateWriters are shared by all recorders and held only while a segment
// is compressed: a flate writer holds close to a megabyte of state, too
// much to keep per session.
//
// Chunks are compressed by klauspost/compress (already in the module graph
// through the Prometheus client) at BestSpeed: on a chunk of result rows
// (BenchmarkCompressChunk) it is about twice as fast as compress/flate at
// BestSpeed with a slightly better ratio. The output is plain gzip: Reader
// decompresses it with the standard library, as it does chunks written
// before.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // a valid level: cannot fail
	return w
}}

// gzipHeader starts every chunk (RFC 1952): deflate, no flags, no
// modification time, XFL 4 (fastest compression), OS unknown.
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff}

// gzipMember is one chunk's gzip member, compressed a segment at a time.
// Each segment is a deflate stream of its own up to a sync flush (an empty
// stored block, which ends byte-aligned), so a segment needs no state
// from the one before and the next continues the same member; the last
// ends with a final block, followed by the CRC-32 and size of everything.
type gzipMember struct {
	data appendWriter // header and segments so far; empty before the first
	crc  uint32
	size int // uncompressed bytes so far
}

// add compresses raw as the member's next segment, the last one if last
// (then data is a complete gzip member).
func (g *gzipMember) add(raw []byte, last bool) error {
	if len(g.data) == 0 {
		g.data = append(g.data, gzipHeader[:]...)
	}
	w := flateWriters.Get().(*flate.Writer)
	w.Reset(&g.data)
	_, err := w.Write(raw)
	if err == nil {
		if last {
			err = w.Close()
		} else {
			err = w.Flush()
		}
	}
	w.Reset(nil) // the pool must not keep this member's buffer
	flateWriters.Put(w)
	if err != nil {
		return err
	}
	g.crc = crc32.Update(g.crc, crc32.IEEETable, raw)
	g.size += len(raw)
	if last {
		g.data = binary.LittleEndian.AppendUint32(g.data, g.crc)
		g.data = binary.LittleEndian.AppendUint32(g.data, uint32(g.size))
	}
	return nil
}

// reset empties g, keeping buf's storage (may be nil) for the next member.
func (g *gzipMember) reset(buf []byte) {
	*g = gzipMember{data: buf[:0]}
}

// appendWriter is an io.Writer appending to itself.
type appendWriter []byte

func (w *appendWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}
