package record

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Defaults for Options.
const (
	// DefaultMaxBytes caps a recording at 64 MiB of entries. Chunks of
	// DefaultChunkBytes then number at most 129, and so do the digests in
	// the session.end audit event (about 8.5 KB of hex).
	DefaultMaxBytes = 64 << 20
	// DefaultChunkBytes is the uncompressed size of a chunk. A busy session
	// holds the entries not yet compressed (up to a segment, 64 KiB) and
	// up to four compressed chunks (being filled, two queued, being
	// stored): about 0.3 MiB for result rows, up to 2 MiB if what it
	// records does not compress.
	DefaultChunkBytes = 512 << 10
	// DefaultWriteTimeout bounds one chunk's store write.
	DefaultWriteTimeout = 30 * time.Second
)

// ErrClosed is returned by a Recorder's methods after Close.
var ErrClosed = errors.New("record: recorder is closed")

// Meta describes the recorded session. It is stored in the recording's row
// and, so that it shares the chunks' tamper evidence, as the first entry.
type Meta struct {
	Principal  string    `json:"principal"` // the principal's name
	Connection string    `json:"connection"`
	Role       string    `json:"role"`
	Database   string    `json:"database,omitempty"` // the target database
	Source     string    `json:"source,omitempty"`   // the client's address
	Protocol   string    `json:"protocol,omitempty"` // "postgres", …
	Started    time.Time `json:"started"`            // zero: Options.Now() at New
}

// Options tune a Recorder. Zero fields take the defaults.
type Options struct {
	MaxBytes     int64         // cap on entry bytes; DefaultMaxBytes
	ChunkBytes   int           // uncompressed chunk size; DefaultChunkBytes
	WriteTimeout time.Duration // per chunk write; DefaultWriteTimeout
	Now          func() time.Time
	// CreateAsync makes New return before the recording's row is created:
	// a goroutine of its own creates it (within WriteTimeout) and chunks
	// are stored only after it. A failure to create it is the recorder's
	// failure, returned by the calls after it and by Close. Entries are
	// kept in memory meanwhile, as they are until any chunk is stored.
	CreateAsync bool
}

// Recorder writes one session's recording. It is safe for concurrent use
// (see the package doc). Close must be called when the session ends: it
// stores what is buffered, stops the background writer and returns the
// Summary for the session.end audit event.
type Recorder struct {
	st   store.Store
	id   string
	opts Options

	mu         sync.Mutex // guards the fields below, and sending on storec
	buf        []byte     // the chunk's entries not yet compressed (its header, at first)
	z          gzipMember // the chunk's entries compressed so far
	seq        int64      // number of the chunk being filled
	chunkTime  int64      // Unix ns of its first entry
	last       int64      // Unix ns of the last entry recorded; entries never go back in time
	entryStart int        // offset in buf of the entry being written
	bytes      int64      // entry bytes recorded (chunk headers not counted)
	truncated  bool
	dropped    int64 // entries dropped after truncation
	droppedLen int64 // their size
	closed     bool
	writing    bool // the storing goroutine is started

	// err is the first failure, set by the storing goroutine without
	// taking mu (which is held while waiting on it). An atomic, not a
	// mutex: it is read on every entry, a million times for a large result.
	err atomic.Pointer[error]

	// Completed chunks go to the storing goroutine, which hands their
	// buffers back, so that the relay waits for a slow store write (a
	// commit's fsync) only once two more chunks are queued behind it.
	storec  chan chunkJob // compressed chunks, to the storing goroutine
	zspare  chan []byte   // emptied buffers, back from it
	created chan struct{} // closed once the recording's row is created, or could not be
	done    chan struct{} // closed when the storing goroutine has ended

	// Owned by the storing goroutine until done is closed.
	hashes []Hash
	stored int64
}

// chunkJob is one compressed chunk on its way to the store.
type chunkJob struct {
	seq  int64
	time int64
	data []byte
}

// New creates the recording's row in st and returns its Recorder; with
// Options.CreateAsync it returns at once and the row is created in the
// background. The session ID must be new to st (store.ErrExists
// otherwise, from New or, with CreateAsync, from the calls after the
// creation failed and from Close). ctx bounds only a synchronous
// creation; later writes use Options.WriteTimeout, since a recording
// outlives any one request.
func New(ctx context.Context, st store.Store, sessionID string, meta Meta, opts Options) (*Recorder, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if meta.Started.IsZero() {
		meta.Started = opts.Now()
	}
	meta.Started = meta.Started.UTC()
	row := store.Recording{
		SessionID: sessionID, Principal: meta.Principal, Connection: meta.Connection,
		Role: meta.Role, Started: meta.Started,
	}
	r := &Recorder{
		st: st, id: sessionID, opts: opts,
		buf:     make([]byte, 0, min(4<<10, opts.ChunkBytes)),
		storec:  make(chan chunkJob, 2),
		zspare:  make(chan []byte, 3),
		created: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if opts.CreateAsync {
		go r.create(context.WithoutCancel(ctx), row)
	} else {
		if err := st.CreateRecording(ctx, row); err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		close(r.created)
	}
	// The meta entry is written whatever the cap: it is tiny and a
	// recording without it would not say whose it is.
	r.mu.Lock()
	r.startEntryLocked(EntryMeta, meta.Started,
		strLen(meta.Principal)+strLen(meta.Connection)+strLen(meta.Role)+strLen(meta.Database)+strLen(meta.Source)+strLen(meta.Protocol))
	for _, s := range []string{meta.Principal, meta.Connection, meta.Role, meta.Database, meta.Source, meta.Protocol} {
		r.buf = appendStr(r.buf, s)
	}
	r.endEntryLocked()
	r.mu.Unlock()
	return r, nil
}

// ID returns the recorded session's ID.
func (r *Recorder) ID() string { return r.id }

// Client records a message from the client at t: kind says which (query,
// parse, bind, execute, copy, …), text is the statement or the data, params
// the bind parameters (nil element: NULL). All of it already masked.
//
// Like every recording method it returns nil when the entry is recorded or
// dropped past the size cap, ErrClosed after Close, and the store's error
// once a chunk could not be stored.
func (r *Recorder) Client(t time.Time, kind, text string, params []*string) error {
	body := strLen(kind) + strLen(text) + uvarintLen(uint64(len(params)))
	for _, p := range params {
		if p == nil {
			body++
		} else {
			body += uvarintLen(uint64(len(*p))+1) + len(*p)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok, err := r.beginLocked(EntryClient, t, body); !ok {
		return err
	}
	r.buf = appendStr(r.buf, kind)
	r.buf = appendStr(r.buf, text)
	r.buf = binary.AppendUvarint(r.buf, uint64(len(params)))
	for _, p := range params {
		r.buf = appendNullableStr(r.buf, p)
	}
	r.endEntryLocked()
	return nil
}

// Columns records a result's column names (a RowDescription), so that a
// replay can print a header.
func (r *Recorder) Columns(t time.Time, names []string) error {
	body := uvarintLen(uint64(len(names)))
	for _, n := range names {
		body += strLen(n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok, err := r.beginLocked(EntryColumns, t, body); !ok {
		return err
	}
	r.buf = binary.AppendUvarint(r.buf, uint64(len(names)))
	for _, n := range names {
		r.buf = appendStr(r.buf, n)
	}
	r.endEntryLocked()
	return nil
}

// Row records one result row: the masked values as text, nil for NULL.
// It copies values into the recorder's buffer, so the caller may reuse
// them at once; it does not allocate once the buffer has grown.
func (r *Recorder) Row(t time.Time, values [][]byte) error {
	body := uvarintLen(uint64(len(values)))
	for _, v := range values {
		if v == nil {
			body++
		} else {
			body += uvarintLen(uint64(len(v))+1) + len(v)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok, err := r.beginLocked(EntryRow, t, body); !ok {
		return err
	}
	r.buf = binary.AppendUvarint(r.buf, uint64(len(values)))
	for _, v := range values {
		r.buf = appendNullable(r.buf, v)
	}
	r.endEntryLocked()
	return nil
}

// Result records a command's completion tag ("SELECT 2", "UPDATE 1").
func (r *Recorder) Result(t time.Time, tag string) error {
	return r.strings(EntryResult, t, tag)
}

// Error records an error sent to the client: its SQLSTATE and (masked)
// message. Errors Gatehouse itself raises (a policy denial) are recorded
// the same way.
func (r *Recorder) Error(t time.Time, sqlstate, message string) error {
	return r.strings(EntryError, t, sqlstate, message)
}

// Notice records a notice's (masked) message.
func (r *Recorder) Notice(t time.Time, message string) error {
	return r.strings(EntryNotice, t, message)
}

func (r *Recorder) strings(typ EntryType, t time.Time, ss ...string) error {
	body := 0
	for _, s := range ss {
		body += strLen(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok, err := r.beginLocked(typ, t, body); !ok {
		return err
	}
	for _, s := range ss {
		r.buf = appendStr(r.buf, s)
	}
	r.endEntryLocked()
	return nil
}

// beginLocked starts an entry of body bytes at t and reports whether the
// caller should write its body. It returns false with a nil error when the
// entry is dropped past the size cap.
func (r *Recorder) beginLocked(typ EntryType, t time.Time, body int) (bool, error) {
	if r.closed {
		return false, ErrClosed
	}
	if err := r.failure(); err != nil {
		return false, err
	}
	size := 1 + uvarintLen(uint64(max(0, t.UnixNano()-r.last))) + body
	if r.truncated {
		r.dropped++
		r.droppedLen += int64(size)
		return false, nil
	}
	if r.bytes+int64(size) > r.opts.MaxBytes {
		// The marker goes in although it passes the cap by a few bytes:
		// the cap bounds the recording, the marker makes the cut visible.
		r.truncated = true
		r.startEntryLocked(EntryTruncated, t, binary.MaxVarintLen64)
		r.buf = binary.AppendUvarint(r.buf, uint64(r.opts.MaxBytes))
		r.endEntryLocked()
		r.dropped++
		r.droppedLen += int64(size)
		return false, nil
	}
	r.startEntryLocked(typ, t, body)
	return true, nil
}

// startEntryLocked writes an entry's type and time, first handing a full
// chunk to the storing goroutine and starting a new one if the entry would
// not fit, or compressing the entries so far if a segment is full. An
// entry never spans chunks; one bigger than a chunk gets a chunk of its
// own.
func (r *Recorder) startEntryLocked(typ EntryType, t time.Time, body int) {
	need := 1 + binary.MaxVarintLen64 + body
	if n := r.chunkLenLocked(); n > 0 && n+need > r.opts.ChunkBytes {
		r.flushLocked()
	} else if len(r.buf) > 0 && len(r.buf)+need > segmentBytes {
		r.compressLocked(false)
	}
	ns := max(t.UnixNano(), r.last)
	if r.chunkLenLocked() == 0 {
		r.buf = appendHeader(r.buf, r.id, r.seq, ns)
		r.chunkTime = ns
		r.last = ns
	}
	r.entryStart = len(r.buf)
	r.buf = append(r.buf, byte(typ))
	r.buf = binary.AppendUvarint(r.buf, uint64(ns-r.last))
	r.last = ns
}

func (r *Recorder) endEntryLocked() {
	r.bytes += int64(len(r.buf) - r.entryStart)
}

// chunkLenLocked is the uncompressed size of the chunk being filled.
func (r *Recorder) chunkLenLocked() int {
	return r.z.size + len(r.buf)
}

// compressLocked compresses the entries in buf as the chunk's next
// segment, its last if last, and reports whether it could (a failure is
// the recorder's).
func (r *Recorder) compressLocked(last bool) bool {
	err := r.z.add(r.buf, last)
	r.emptyBufLocked()
	if err != nil {
		r.fail(fmt.Errorf("record: session %s: chunk %d not compressed: %w", r.id, r.seq, err))
		return false
	}
	return true
}

// emptyBufLocked empties buf, letting go of one an entry larger than a
// chunk grew.
func (r *Recorder) emptyBufLocked() {
	if cap(r.buf) > r.opts.ChunkBytes+r.opts.ChunkBytes/8 {
		r.buf = nil
	}
	r.buf = r.buf[:0]
}

// flushLocked completes the chunk being filled and hands it to the storing
// goroutine. It blocks while that goroutine is still storing one chunk and
// two more are queued: that back-pressure is what bounds a session's
// memory.
func (r *Recorder) flushLocked() {
	if r.chunkLenLocked() == 0 {
		return
	}
	if !r.compressLocked(true) {
		r.z.reset(r.z.data)
		return
	}
	job := chunkJob{seq: r.seq, time: r.chunkTime, data: r.z.data}
	r.seq++
	var next []byte
	select {
	case next = <-r.zspare:
	default:
	}
	r.z.reset(next)
	r.startWritersLocked()
	r.storec <- job
}

// create creates the recording's row for New with Options.CreateAsync.
func (r *Recorder) create(ctx context.Context, row store.Recording) {
	defer close(r.created)
	ctx, cancel := context.WithTimeout(ctx, r.opts.WriteTimeout)
	defer cancel()
	if err := r.st.CreateRecording(ctx, row); err != nil {
		r.fail(fmt.Errorf("record: session %s: %w", r.id, err))
	}
}

// fail records the recorder's first failure, which every later call
// returns.
func (r *Recorder) fail(err error) {
	r.err.CompareAndSwap(nil, &err)
}

// startWritersLocked starts the storing goroutine at the first chunk, so
// that a session that never fills one (most sessions) costs no goroutine
// for its recording.
func (r *Recorder) startWritersLocked() {
	if !r.writing {
		r.writing = true
		go r.storeLoop()
	}
}

// storeLoop stores compressed chunks in order, keeping their digests for
// the Summary.
func (r *Recorder) storeLoop() {
	defer close(r.done)
	<-r.created // chunks reference the recording's row
	for job := range r.storec {
		if r.failure() == nil {
			if err := r.storeChunk(job); err != nil {
				r.fail(fmt.Errorf("record: session %s: chunk %d not stored: %w", r.id, job.seq, err))
			}
		}
		// The store has copied the data (AppendChunk's contract): the
		// buffer can take the next compressed chunk.
		select {
		case r.zspare <- job.data[:0]:
		default:
		}
	}
}

func (r *Recorder) storeChunk(job chunkJob) error {
	sum := sha256.Sum256(job.data)
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.WriteTimeout)
	defer cancel()
	err := r.st.AppendChunk(ctx, store.Chunk{
		SessionID: r.id, Seq: job.seq, Time: time.Unix(0, job.time).UTC(), Data: job.data, SHA256: sum,
	})
	if err != nil {
		return err
	}
	r.hashes = append(r.hashes, Hash(sum))
	r.stored += int64(len(job.data))
	return nil
}

func (r *Recorder) failure() error {
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close writes the end entry, stores the last chunk, waits for the writer
// and marks the recording ended in the store. The Summary it returns
// belongs in the session.end audit event (Summary.AuditExtra); it is
// returned with the error too, describing what was stored, when a chunk
// could not be. If ctx ends first, Close returns ctx's error and the
// writer finishes in the background within Options.WriteTimeout.
func (r *Recorder) Close(ctx context.Context) (Summary, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Summary{}, ErrClosed
	}
	now := r.opts.Now()
	if r.failure() == nil {
		r.startEntryLocked(EntryEnd, now, 2*binary.MaxVarintLen64)
		r.buf = binary.AppendUvarint(r.buf, uint64(r.dropped))
		r.buf = binary.AppendUvarint(r.buf, uint64(r.droppedLen))
		r.endEntryLocked()
		r.flushLocked()
	}
	r.closed = true
	r.startWritersLocked() // it ends at once if nothing was ever flushed
	close(r.storec)
	bytes, truncated, dropped, droppedLen := r.bytes, r.truncated, r.dropped, r.droppedLen
	ended := time.Unix(0, max(now.UnixNano(), r.last)).UTC()
	r.mu.Unlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		return Summary{}, fmt.Errorf("record: close %s: %w", r.id, ctx.Err())
	}
	sum := Summary{
		SessionID: r.id, Chunks: int64(len(r.hashes)), Bytes: bytes, StoredBytes: r.stored,
		Truncated: truncated, DroppedEntries: dropped, DroppedBytes: droppedLen, SHA256: r.hashes,
	}
	if err := r.failure(); err != nil {
		return sum, err
	}
	err := r.st.FinishRecording(ctx, store.Recording{SessionID: r.id, Ended: ended, Bytes: bytes, Truncated: truncated})
	if err != nil {
		return sum, fmt.Errorf("record: close: %w", err)
	}
	return sum, nil
}
