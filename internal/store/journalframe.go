package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// A journal frame is one AppendEvents call:
//
//	magic   uint32 "GHJ1"
//	length  uint32 of the payload
//	crc     uint32 CRC-32C of the payload
//	payload first index (uvarint), record count (uvarint), the records,
//	        then the head after them: size (uvarint), hash count (uvarint),
//	        hashes (32 bytes each)
//
// and a record is its time (varint Unix nanoseconds), kind, session,
// principal, connection, decision and outcome (uvarint length + bytes
// each), table count and tables, data, and its 32-byte leaf hash.
//
// The CRC tells a frame that was written whole from one torn by a crash or
// left over from before the file was last reused; the indexes tell a frame
// of this generation (each starts where the previous one ended) from an
// older one. Neither is a defence against tampering: the Merkle tree and
// signed checkpoints are.

const (
	frameMagic      = 0x47484a31 // "GHJ1"
	frameHeaderSize = 12
	// maxFramePayload bounds what a frame header may claim, so a corrupt
	// length cannot make replay allocate gigabytes.
	maxFramePayload = 256 << 20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// journalBatch is one frame's content: records and the head after them.
type journalBatch struct {
	recs []Record
	next Head
}

// appendFrame appends the frame of b to dst.
func appendFrame(dst []byte, b journalBatch) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize)...)
	dst = binary.AppendUvarint(dst, uint64(b.recs[0].Index))
	dst = binary.AppendUvarint(dst, uint64(len(b.recs)))
	for i := range b.recs {
		r := &b.recs[i]
		dst = binary.AppendVarint(dst, r.Time.UnixNano())
		for _, s := range [...]string{r.Kind, r.SessionID, r.Principal, r.Connection, r.Decision, r.Outcome} {
			dst = appendString(dst, s)
		}
		dst = binary.AppendUvarint(dst, uint64(len(r.Tables)))
		for _, t := range r.Tables {
			dst = appendString(dst, t)
		}
		dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
		dst = append(dst, r.Data...)
		dst = append(dst, r.Hash[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(b.next.Size))
	dst = binary.AppendUvarint(dst, uint64(len(b.next.Hashes)))
	for _, h := range b.next.Hashes {
		dst = append(dst, h[:]...)
	}
	payload := dst[start+frameHeaderSize:]
	binary.BigEndian.PutUint32(dst[start:], frameMagic)
	binary.BigEndian.PutUint32(dst[start+4:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+8:], crc32.Checksum(payload, crc32c))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// errNoFrame means the bytes at an offset are not a whole, intact frame:
// the end of the journal's current generation.
var errNoFrame = errors.New("no intact frame")

// readFrame decodes the frame at the start of buf and returns it with its
// size in bytes. It returns errNoFrame when buf does not start with an
// intact frame, and another error when an intact frame (its CRC matches)
// does not decode: that is not a torn write but a bug or deliberate edit.
func readFrame(buf []byte) (journalBatch, int, error) {
	if len(buf) < frameHeaderSize || binary.BigEndian.Uint32(buf) != frameMagic {
		return journalBatch{}, 0, errNoFrame
	}
	n := binary.BigEndian.Uint32(buf[4:])
	if n > maxFramePayload || int(n) > len(buf)-frameHeaderSize {
		return journalBatch{}, 0, errNoFrame
	}
	payload := buf[frameHeaderSize : frameHeaderSize+int(n)]
	if crc32.Checksum(payload, crc32c) != binary.BigEndian.Uint32(buf[8:]) {
		return journalBatch{}, 0, errNoFrame
	}
	b, err := decodeBatch(payload)
	if err != nil {
		return journalBatch{}, 0, fmt.Errorf("intact frame does not decode: %w", err)
	}
	return b, frameHeaderSize + int(n), nil
}

// frameDecoder reads a payload front to back; the first error sticks.
type frameDecoder struct {
	buf []byte
	err error
}

var errShortFrame = errors.New("frame payload ends early")

func (d *frameDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = errShortFrame
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *frameDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = errShortFrame
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *frameDecoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.err = errShortFrame
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *frameDecoder) string() string { return string(d.bytes(d.uvarint())) }

func (d *frameDecoder) hash() tlog.Hash {
	var h tlog.Hash
	copy(h[:], d.bytes(tlog.HashSize))
	return h
}

// count reads a length that must fit in what is left, each item taking at
// least min bytes, so that a corrupt count cannot allocate beyond the frame.
func (d *frameDecoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.buf)/min) {
		d.err = errShortFrame
		return 0
	}
	return int(n)
}

func decodeBatch(payload []byte) (journalBatch, error) {
	d := &frameDecoder{buf: payload}
	first := d.uvarint()
	// A record takes at least its time, seven lengths and a hash.
	recs := make([]Record, d.count(1+7+tlog.HashSize))
	for i := range recs {
		r := &recs[i]
		r.Index = int64(first) + int64(i)
		r.Time = time.Unix(0, d.varint()).UTC()
		r.Kind, r.SessionID, r.Principal = d.string(), d.string(), d.string()
		r.Connection, r.Decision, r.Outcome = d.string(), d.string(), d.string()
		if n := d.count(1); n > 0 {
			r.Tables = make([]string, n)
			for j := range r.Tables {
				r.Tables[j] = d.string()
			}
		}
		r.Data = d.bytes(d.uvarint())
		r.Hash = d.hash()
	}
	next := Head{Size: int64(d.uvarint())}
	if n := d.count(tlog.HashSize); n > 0 {
		next.Hashes = make([]tlog.Hash, n)
		for i := range next.Hashes {
			next.Hashes[i] = d.hash()
		}
	}
	if d.err != nil {
		return journalBatch{}, d.err
	}
	if len(d.buf) != 0 {
		return journalBatch{}, fmt.Errorf("%d bytes after the head", len(d.buf))
	}
	if len(recs) == 0 || first > 1<<62 {
		return journalBatch{}, errors.New("frame holds no records")
	}
	if err := checkAppend(recs, next); err != nil {
		return journalBatch{}, err
	}
	for i := range recs {
		if tlog.RecordHash(recs[i].Data) != recs[i].Hash {
			return journalBatch{}, fmt.Errorf("record %d: leaf hash does not match its data", recs[i].Index)
		}
	}
	return journalBatch{recs: recs, next: next}, nil
}
