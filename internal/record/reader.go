package record

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Problem is something wrong with a stored recording: a chunk that does not
// match its digest, is missing, is out of place or cannot be decoded.
type Problem struct {
	Chunk   int64  `json:"chunk"` // the first chunk concerned
	Message string `json:"message"`
}

// ErrNotFound is returned by Open for a session without a recording.
var ErrNotFound = errors.New("record: no such recording")

// readPage is how many chunks a Reader fetches at a time: memory stays
// bounded whatever the recording's length.
const readPage = 8

// maxChunkRaw caps how far a chunk is decompressed. A chunk holds at most
// ChunkBytes plus one entry, and an entry is at most MaxBytes; the cap only
// stops a forged chunk (one that also forged its digest) from being a
// decompression bomb.
const maxChunkRaw = 256 << 20

// Reader reads one stored recording and verifies it as it goes.
type Reader struct {
	st       store.Store
	info     store.Recording
	expect   *Summary
	problems []Problem
}

// Open returns a Reader for the recording of session id.
func Open(ctx context.Context, st store.Store, id string) (*Reader, error) {
	info, err := st.Recording(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("record: open %s: %w", id, err)
	}
	return &Reader{st: st, info: info}, nil
}

// Info returns the recording's row.
func (r *Reader) Info() store.Recording { return r.info }

// Expect makes the Reader check every chunk against s, the Summary of the
// session.end audit event (see AuditedSummary), as well as against the
// digest stored beside it. Without it, a reader detects edits that did not
// also rewrite the digest column, and chunks missing from the middle; with
// it, any edit, removal, addition or reordering of chunks.
func (r *Reader) Expect(s Summary) { r.expect = &s }

// Problems returns what the last complete iteration of Entries found.
func (r *Reader) Problems() []Problem { return r.problems }

// Verify reads the whole recording and returns its problems.
func (r *Reader) Verify(ctx context.Context) ([]Problem, error) {
	for _, err := range r.Entries(ctx) {
		if err != nil {
			return nil, err
		}
	}
	return r.problems, nil
}

// Entries iterates over the recording's entries in order. A chunk that
// fails verification yields one EntryDamaged entry saying why, instead of
// its contents, and is added to Problems; iteration goes on with the next
// chunk. The error is non-nil only when the store cannot be read, and ends
// the iteration.
func (r *Reader) Entries(ctx context.Context) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		r.problems = nil
		damage := func(chunk int64, format string, args ...any) bool {
			p := Problem{Chunk: chunk, Message: fmt.Sprintf(format, args...)}
			r.problems = append(r.problems, p)
			return yield(Entry{Type: EntryDamaged, Chunk: chunk, Text: p.Message}, nil)
		}
		var (
			next   int64 // the chunk expected next
			sawEnd bool
		)
		for {
			cs, err := r.st.Chunks(ctx, r.info.SessionID, next, readPage)
			if err != nil {
				yield(Entry{}, fmt.Errorf("record: read %s: %w", r.info.SessionID, err))
				return
			}
			for _, c := range cs {
				if c.Seq != next && !damage(next, "%s missing", chunkRange(next, c.Seq-1)) {
					return
				}
				next = c.Seq + 1
				raw, msg := r.check(c)
				if msg != "" {
					if !damage(c.Seq, "chunk %d %s", c.Seq, msg) {
						return
					}
					continue
				}
				d := decoder{b: raw}
				session, seq, at, err := d.header()
				switch {
				case err != nil:
					if !damage(c.Seq, "chunk %d: %v", c.Seq, err) {
						return
					}
					continue
				case session != r.info.SessionID:
					if !damage(c.Seq, "chunk %d belongs to session %q", c.Seq, session) {
						return
					}
					continue
				case seq != c.Seq:
					if !damage(c.Seq, "chunk %d says it is chunk %d", c.Seq, seq) {
						return
					}
					continue
				}
				for len(d.b) > 0 {
					e, err := d.entry(&at)
					if err != nil {
						if !damage(c.Seq, "chunk %d: %v", c.Seq, err) {
							return
						}
						break
					}
					e.Chunk = c.Seq
					sawEnd = sawEnd || e.Type == EntryEnd
					if !yield(e, nil) {
						return
					}
				}
			}
			if len(cs) < readPage {
				break
			}
		}
		switch {
		case r.expect != nil && next < int64(len(r.expect.SHA256)):
			damage(next, "%s missing: the session.end audit event lists %d chunks", chunkRange(next, int64(len(r.expect.SHA256))-1), len(r.expect.SHA256))
		case next < r.info.Chunks:
			damage(next, "%s missing: the recording's row counts %d chunks", chunkRange(next, r.info.Chunks-1), r.info.Chunks)
		case !sawEnd && (r.expect != nil || !r.info.Ended.IsZero()):
			damage(next, "the recording ended but its end entry is missing: its last chunk was removed")
		}
	}
}

// chunkRange names chunks from to to, with the verb's number.
func chunkRange(from, to int64) string {
	if from == to {
		return fmt.Sprintf("chunk %d is", from)
	}
	return fmt.Sprintf("chunks %d to %d are", from, to)
}

// check verifies c's digests and returns its decompressed bytes, or why it
// cannot be trusted.
func (r *Reader) check(c store.Chunk) ([]byte, string) {
	sum := sha256.Sum256(c.Data)
	if sum != c.SHA256 {
		return nil, "does not match its stored digest"
	}
	if r.expect != nil {
		if c.Seq >= int64(len(r.expect.SHA256)) {
			return nil, fmt.Sprintf("is not in the session.end audit event, which lists %d chunks", len(r.expect.SHA256))
		}
		if Hash(sum) != r.expect.SHA256[c.Seq] {
			return nil, "differs from its digest in the session.end audit event"
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(c.Data))
	if err != nil {
		return nil, fmt.Sprintf("cannot be decompressed: %v", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxChunkRaw+1))
	if err == nil && len(raw) > maxChunkRaw {
		err = errors.New("too large")
	}
	if err != nil {
		return nil, fmt.Sprintf("cannot be decompressed: %v", err)
	}
	return raw, ""
}
