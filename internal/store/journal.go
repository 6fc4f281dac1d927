package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// Journal makes a store's audit appends durable in an append-only file and
// indexes them into the store behind the writers.
//
// Audit-before-forward puts one durable write on every statement's path.
// Committed straight to SQLite that write is a transaction that updates six
// b-trees, writes their pages to the WAL and fsyncs it, for a group of a
// handful of events: most of the gateway's CPU under load. Through the
// journal it is one write of the encoded events and one fdatasync; the
// b-trees are updated by one goroutine in transactions of hundreds of events,
// at a fraction of the cost per event.
//
// AppendEvents returns once the events are in the journal and fdatasync has
// returned. Readers see them after they are indexed: Events, PutCheckpoint and
// PruneEvents first wait for the index to catch up (normally within
// JournalIndexDelay), so a reader never sees a checkpoint or a prune that the
// events it covers do not back. Head is the journal's, ahead of the index.
//
// The journal holds an exclusive lock on its file: one process appends to a
// journaled store, and Open replays into the store whatever a crash left
// unindexed. The file is reused from the start whenever the index has caught
// up and is on disk (see deferredSync), so it stays small; frames from before
// are told apart by their indexes (see journalframe.go).
//
// If an fdatasync fails the journal is broken for good, as PostgreSQL treats
// a failed fsync: the kernel may have dropped the dirty pages, so nothing
// written since is known to be on disk. Every later append fails (the
// gateway refuses statements) until the process restarts and replays. The
// same holds for a failed sync of the index, whose events since its last
// good sync the journal then keeps for the replay (see indexBroken). If
// the index fails, appends fail too (fail closed: the trail an auditor can
// query must not fall behind unnoticed) and the indexer retries; events
// already journaled are indexed when it recovers.
type Journal struct {
	JournalIndex // the index; the methods below take precedence

	path   string
	f      *os.File
	fd     int // f's descriptor, for fdatasync
	logger *slog.Logger
	// fdatasync is syscall.Fdatasync; tests make it fail.
	fdatasync func(fd int) error

	// indexRecs is the last index transaction's records, kept for its
	// array; only index touches it (the replay in openJournal, then the
	// indexer).
	indexRecs []Record

	// appendMu serialises AppendEvents: one write and fdatasync at a time,
	// each at the end of the one before.
	appendMu sync.Mutex
	buf      []byte    // the frame being written; guarded by appendMu
	last     time.Time // the last journaled event's time; written holding appendMu and mu

	mu      sync.Mutex // guards the fields below
	head    Head       // the end of the journaled log
	writes  int64      // frames written, for the background syncer
	off     int64      // where the next frame goes
	queue   []journalBatch
	indexed int64 // the index's size, committed in the store
	// durable is the index's size known to be on disk: indexed, unless the
	// store defers its syncs (deferredSync) and SyncIndex has not run since.
	// The journal starts over only once durable reaches its head.
	durable  int64
	deferred deferredSync // the store, if it defers syncs; else nil
	// indexErr is the index's last failure, nil once an attempt succeeds.
	indexErr error
	// broken is a failed write whose outcome on disk is unknown.
	broken error
	// indexBroken is a failed sync of the index: what it took since its
	// last good sync is not known to be on disk, so durable never moves
	// again and the journal, which still holds those events, never starts
	// over; appends are refused until a restart replays them.
	indexBroken error
	// indexWaits counts appends that waited for the index, indexWaitTime
	// their waits (JournalStats).
	indexWaits    int64
	indexWaitTime time.Duration
	closed        bool
	// progress is closed (and replaced) after every index attempt.
	progress chan struct{}

	kick      chan struct{} // new batches queued (buffered 1)
	urgent    chan struct{} // a reader waits (buffered 1)
	stop      chan struct{} // closed by Close
	indexDone chan struct{} // closed when the indexer has stopped
	syncDone  chan struct{} // closed when the background syncer has stopped

	// syncEvery is JournalOptions.SyncInterval.
	syncEvery time.Duration
	closeOnce sync.Once
	closeErr  error
}

// Journal tuning. The delay trades index freshness for cost: a reader that
// needs fresh events asks for them at once.
const (
	// JournalIndexDelay is how long queued events wait to share an index
	// transaction with those that follow.
	JournalIndexDelay = 50 * time.Millisecond
	// journalMaxIndexBatch caps one index transaction.
	journalMaxIndexBatch = 4096
	// journalPrealloc is written (zeros) when the journal is opened so that
	// appends overwrite allocated blocks: fdatasync then flushes data, not
	// the file's size and extents too (a metadata journal commit, about a
	// third more per append on ext4 here).
	journalPrealloc = 8 << 20
	// journalLimit is how far the journal fills before every append waits
	// for the index to catch up so that it can start over. Normally the
	// journal starts over at journalSyncAt (see journalCatchUp); the limit
	// holds an index slower than the appends, and keeps a stalled index
	// from filling the disk.
	journalLimit = journalPrealloc
	// journalRetry is the pause between failed index attempts.
	journalRetry = 500 * time.Millisecond
)

// JournalIndex is what a Journal indexes into: the store, which keeps the
// approvals too.
type JournalIndex interface {
	Store
	ApprovalStore
}

// JournalOptions configure a Journal.
type JournalOptions struct {
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// SyncInterval, when positive, takes fdatasync off the appends: an
	// append returns once its events are written to the file (the kernel's
	// page cache), which survives the gateway crashing or being killed but
	// not the machine losing power or the kernel crashing; a background
	// fdatasync follows within SyncInterval. Zero, the default, syncs
	// before every append returns.
	SyncInterval time.Duration
}

// deferredSync is a store whose appends can skip their own fsync and be made
// durable in bulk. Through a journal, an index commit need not be on disk
// until the journal is about to forget its events: syncing every index
// transaction only made the journal's own fdatasync wait behind it.
type deferredSync interface {
	DeferSync() error
	SyncIndex() error
}

// journalSyncAt is how far the journal grows before appends wait for the
// index to catch up and be synced so that the journal can start over:
// about half a second of a busy gateway's events. Catching up costs a few
// small index transactions (see indexQueued), so not too often. A gateway
// whose index catches up between appends starts over at the end of an
// index round (it syncs there) without waiting.
const journalSyncAt = 4 << 20

// journalCatchUp is how close (in events) the index must come to the head
// of a journal grown past journalSyncAt before an append waits for the rest
// to be indexed and synced. Without the wait, appends arriving while the
// index syncs keep it a step behind until the journal is full, and the
// wait is then a whole round's index transaction instead of a few events'.
// The index chases the appends down to this many in small transactions,
// which converge at once (it indexes some ten times faster than a busy
// gateway appends), while appends go on: the wait covers at most these.
const journalCatchUp = 64

// ErrJournalLocked is returned by OpenJournal when another process holds the
// journal: a gateway is running on the store.
var ErrJournalLocked = errors.New("store: journal is locked by another process")

// OpenJournal opens (creating if needed) the journal at path in front of st,
// takes its lock and indexes into st whatever events it holds beyond st's
// head. Closing the Journal closes st.
func OpenJournal(ctx context.Context, st JournalIndex, path string, opts JournalOptions) (*Journal, error) {
	j, err := openJournal(ctx, st, path, opts)
	if err != nil {
		return nil, err
	}
	go j.indexLoop()
	if j.syncEvery > 0 {
		go j.syncLoop()
	} else {
		close(j.syncDone)
	}
	return j, nil
}

// openJournal is OpenJournal without starting the indexer.
func openJournal(ctx context.Context, st JournalIndex, path string, opts JournalOptions) (*Journal, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (is a gateway running on this store?)", ErrJournalLocked, path)
		}
		return nil, fmt.Errorf("store: lock journal %s: %w", path, err)
	}
	j := &Journal{
		JournalIndex: st, path: path, f: f, fd: int(f.Fd()), logger: logger, fdatasync: syscall.Fdatasync,
		progress: make(chan struct{}),
		kick:     make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		stop: make(chan struct{}), indexDone: make(chan struct{}), syncDone: make(chan struct{}),
		syncEvery: opts.SyncInterval,
	}
	if err := j.replay(ctx); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: journal %s: %w", path, err)
	}
	return j, nil
}

// replay indexes the frames st lacks and readies the file for reuse.
func (j *Journal) replay(ctx context.Context) error {
	h, err := j.JournalIndex.Head(ctx)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.NewSectionReader(j.f, 0, 1<<62))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	var (
		pending []journalBatch
		end     int64 = -1 // where the previous frame's records end
		off     int
	)
	for off < len(data) {
		b, n, err := readFrame(data[off:])
		if errors.Is(err, errNoFrame) {
			break
		}
		if err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		first := b.recs[0].Index
		if end >= 0 && first != end {
			break // a frame of an older generation
		}
		end = b.next.Size
		off += n
		switch {
		case b.next.Size <= h.Size:
			continue // indexed before the crash
		case first < h.Size:
			b.recs = b.recs[h.Size-first:]
		case first > h.Size && len(pending) == 0:
			return fmt.Errorf("journal resumes at event %d but the store ends at %d: events are missing", first, h.Size)
		}
		pending = append(pending, b)
	}
	if len(pending) > 0 {
		if err := j.index(ctx, pending); err != nil {
			return fmt.Errorf("index %d unindexed batches: %w", len(pending), err)
		}
		j.logger.Info("audit journal replayed", "events", pending[len(pending)-1].next.Size-h.Size, "size", pending[len(pending)-1].next.Size)
		h = pending[len(pending)-1].next
	}
	if h.Size > 0 {
		last, err := j.JournalIndex.Events(ctx, Query{From: h.Size - 1, Limit: 1})
		if err != nil {
			return fmt.Errorf("read the last event: %w", err)
		}
		if len(last) == 1 {
			j.last = last[0].Time
		}
	}
	// The index is synchronous until here, so what replay indexed is on
	// disk; from now on it may defer.
	j.head, j.indexed, j.durable, j.off = h, h.Size, h.Size, 0
	if d, ok := j.JournalIndex.(deferredSync); ok {
		if err := d.DeferSync(); err != nil {
			return fmt.Errorf("defer index syncs: %w", err)
		}
		j.deferred = d
	}
	if len(data) < journalPrealloc {
		if _, err := j.f.WriteAt(make([]byte, journalPrealloc-len(data)), int64(len(data))); err != nil {
			return fmt.Errorf("preallocate: %w", err)
		}
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("preallocate: %w", err)
		}
	}
	return nil
}

// index appends batches, consecutive, to the store in one transaction. A
// conflict whose head already covers them means an earlier attempt did
// commit although it reported an error.
func (j *Journal) index(ctx context.Context, batches []journalBatch) error {
	recs := j.indexRecs[:0]
	for _, b := range batches {
		recs = append(recs, b.recs...)
	}
	next := batches[len(batches)-1].next
	err := j.JournalIndex.AppendEvents(ctx, recs, next)
	// The indexed events' data need not live until the next round, nor a
	// replay's array (at open, up to a whole journal) for good.
	clear(recs)
	if cap(recs) <= 2*journalMaxIndexBatch {
		j.indexRecs = recs[:0]
	}
	var conflict *ConflictError
	if errors.As(err, &conflict) && conflict.Head.Size == next.Size {
		return nil
	}
	return err
}

// AppendEvents implements Store: the events are durable in the journal
// when it returns nil.
func (j *Journal) AppendEvents(ctx context.Context, recs []Record, next Head) error {
	if err := checkAppend(recs, next); err != nil {
		return err
	}
	j.appendMu.Lock()
	defer j.appendMu.Unlock()
	off, err := j.reserve(ctx, recs[0].Index)
	if err != nil {
		return err
	}
	// Time order is checked here, not by the index: a journaled batch the
	// index refused would block every append after it.
	if recs[0].Time.Before(j.last) {
		j.mu.Lock()
		defer j.mu.Unlock()
		return &ConflictError{Head: j.head, Last: j.last}
	}
	j.buf = appendFrame(j.buf[:0], journalBatch{recs: recs, next: next})
	if _, err := j.f.WriteAt(j.buf, off); err != nil {
		// Nothing acknowledged is lost and the offset does not move: the
		// next frame overwrites this one.
		return fmt.Errorf("store: journal write: %w", err)
	}
	if j.syncEvery == 0 {
		if err := j.sync(); err != nil {
			return err
		}
	}
	// The queue keeps its own slice: a caller may reuse recs for its next
	// append (the store benchmarks do); the Data bytes are not rewritten.
	b := journalBatch{recs: append([]Record(nil), recs...), next: next}
	j.mu.Lock()
	j.off = off + int64(len(j.buf))
	j.writes++
	j.head, j.last = next, recs[len(recs)-1].Time
	j.queue = append(j.queue, b)
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return nil
}

// sync fdatasyncs the journal. A failure breaks the journal for good.
func (j *Journal) sync() error {
	if err := j.fdatasync(j.fd); err != nil {
		err = fmt.Errorf("store: journal fdatasync failed; no append succeeds until the gateway restarts: %w", err)
		j.mu.Lock()
		j.broken = err
		j.mu.Unlock()
		j.logger.Error("audit journal broken", "path", j.path, "err", err)
		return err
	}
	return nil
}

// syncLoop is the background fdatasync of JournalOptions.SyncInterval. It
// runs beside the appends: a write while fdatasync runs is simply covered
// by the next one.
func (j *Journal) syncLoop() {
	defer close(j.syncDone)
	t := time.NewTicker(j.syncEvery)
	defer t.Stop()
	var synced int64
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
		}
		j.mu.Lock()
		writes, broken := j.writes, j.broken != nil
		j.mu.Unlock()
		if writes != synced && !broken && j.sync() == nil {
			synced = writes
		}
	}
}

// reserve returns the offset at which the frame of events from first goes,
// after checking that the journal can take it.
func (j *Journal) reserve(ctx context.Context, first int64) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var waitStart time.Time // set while this append waits for the index
	defer func() {
		if !waitStart.IsZero() {
			j.indexWaits++
			j.indexWaitTime += time.Since(waitStart)
		}
	}()
	for {
		switch {
		case j.closed:
			return 0, errors.New("store: journal is closed")
		case j.broken != nil:
			return 0, j.broken
		case j.indexBroken != nil:
			return 0, j.indexBroken
		case j.indexErr != nil:
			return 0, fmt.Errorf("store: audit index failing, appends refused: %w", j.indexErr)
		case first != j.head.Size:
			return 0, &ConflictError{Head: j.head, Last: j.last}
		}
		if j.durable == j.head.Size {
			// Everything before is durable in the store: start over, on
			// blocks the file already has.
			j.off = 0
		}
		if j.off < journalSyncAt || j.off < journalLimit && j.head.Size-j.indexed > journalCatchUp {
			return j.off, nil
		}
		if waitStart.IsZero() {
			waitStart = time.Now()
		}
		if err := j.waitLocked(ctx); err != nil {
			return 0, fmt.Errorf("store: journal full, waiting for the index: %w", err)
		}
	}
}

// waitLocked asks the indexer to run now and waits for its next attempt.
func (j *Journal) waitLocked(ctx context.Context) error {
	ch := j.progress
	select {
	case j.urgent <- struct{}{}:
	default:
	}
	j.mu.Unlock()
	defer j.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush returns once every event journaled before the call is in the
// store, or the index fails, or ctx ends.
func (j *Journal) Flush(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flushLocked(ctx, j.head.Size)
}

// flushLocked waits for the index to reach size, or the journal's head if
// that is smaller: nothing beyond it will come from waiting.
func (j *Journal) flushLocked(ctx context.Context, size int64) error {
	for attempts := 0; j.indexed < min(size, j.head.Size); attempts++ {
		if j.indexErr != nil && attempts > 0 {
			return fmt.Errorf("store: audit index failing: %w", j.indexErr)
		}
		if j.closed {
			return errors.New("store: journal is closed")
		}
		if err := j.waitLocked(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (j *Journal) flushTo(ctx context.Context, size int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flushLocked(ctx, size)
}

// Head implements Store: the journal's head, which may be ahead of the
// index.
func (j *Journal) Head(context.Context) (Head, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.head, nil
}

// JournalStats says whether the index keeps up with the journal.
type JournalStats struct {
	// Unindexed is how many journaled events the index does not hold yet.
	Unindexed int64
	// IndexWaits counts appends that waited for the index to catch up
	// and be synced before the journal could take them: routinely once
	// the journal has grown past journalSyncAt and starts over (a few
	// events' index transaction and a sync), and on every append while the
	// index falls behind. Their latency was the index's, not the flush's.
	IndexWaits int64
	// IndexWaitTime is how long they waited, in all.
	IndexWaitTime time.Duration
}

// Stats returns the journal's counters.
func (j *Journal) Stats() JournalStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return JournalStats{Unindexed: j.head.Size - j.indexed, IndexWaits: j.indexWaits, IndexWaitTime: j.indexWaitTime}
}

// Events implements Store, after the index has caught up.
func (j *Journal) Events(ctx context.Context, q Query) ([]Record, error) {
	if err := j.Flush(ctx); err != nil {
		return nil, err
	}
	return j.JournalIndex.Events(ctx, q)
}

// PutCheckpoint implements Store. The events it covers are indexed first,
// so no reader of the store sees a checkpoint beyond its events.
func (j *Journal) PutCheckpoint(ctx context.Context, c Checkpoint) error {
	if err := j.flushTo(ctx, c.Size); err != nil {
		return err
	}
	return j.JournalIndex.PutCheckpoint(ctx, c)
}

// PruneEvents implements Pruner, after the index has caught up with the
// prune's head.
func (j *Journal) PruneEvents(ctx context.Context, p Prune) error {
	if err := j.flushTo(ctx, p.Head.Size); err != nil {
		return err
	}
	return j.JournalIndex.PruneEvents(ctx, p)
}

// indexLoop moves journaled batches into the store until Close.
func (j *Journal) indexLoop() {
	defer close(j.indexDone)
	for {
		urgent := false
		select {
		case <-j.stop:
			j.indexQueued(true)
			return
		case <-j.kick:
		case <-j.urgent:
			urgent = true
		}
		if !urgent {
			// Let more batches gather unless a reader waits.
			t := time.NewTimer(JournalIndexDelay)
			select {
			case <-t.C:
			case <-j.urgent:
			case <-j.stop:
			}
			t.Stop()
		}
		for j.indexQueued(false) {
			select {
			case <-j.stop:
				j.indexQueued(true)
				return
			case <-time.After(journalRetry):
			}
		}
	}
}

// indexQueued indexes what is queued, in transactions of at most
// journalMaxIndexBatch events, and reports whether it failed. Unless drain
// is set, it stops after a transaction that took the whole queue: most of
// a transaction's cost is fixed (the right-hand pages of every b-tree are
// written again), so chasing the few events that arrived while it ran
// costs many times more per event than letting them wait for the next
// round. Under load that chase was five transactions for every one that
// mattered. It does chase them once the journal has grown past
// journalSyncAt: the journal starts over only when the index has caught up.
func (j *Journal) indexQueued(drain bool) (failed bool) {
	for {
		j.mu.Lock()
		var (
			take []journalBatch
			n    int
		)
		for _, b := range j.queue {
			if n > 0 && n+len(b.recs) > journalMaxIndexBatch {
				break
			}
			take = append(take, b)
			n += len(b.recs)
		}
		more := len(take) < len(j.queue) || drain || j.off >= journalSyncAt
		j.mu.Unlock()
		if len(take) == 0 {
			if j.syncIndexOrRefuse(false) {
				return true
			}
			j.signalProgress(nil, 0)
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := j.index(ctx, take)
		cancel()
		if err != nil {
			j.logger.Error("audit index failing; appends refused until it recovers", "err", err)
			j.signalProgress(err, 0)
			return true
		}
		j.signalProgress(nil, len(take))
		if !more {
			// Sync what this round wrote, here where no append waits for
			// it: the sync before the journal starts over, which appends
			// do wait for, then has only the last few transactions' pages
			// to write. The appends' wait under load: 0.2–2.4 ms, against
			// 0.4–11 ms when that sync wrote every round's pages since the
			// last start (docs/performance.md).
			return j.syncIndexOrRefuse(true)
		}
	}
}

// syncIndexOrRefuse runs syncIndex; on failure it logs and wakes the
// waiting appends with the error (they are refused from now on, see
// indexBroken), and reports true.
func (j *Journal) syncIndexOrRefuse(force bool) (failed bool) {
	if err := j.syncIndex(force); err != nil {
		j.logger.Error("audit index sync failed; appends refused", "err", err)
		j.signalProgress(err, 0)
		return true
	}
	return false
}

// syncIndex syncs a deferring index once it has caught up with a journal
// grown past journalSyncAt, or with force whatever it holds (at the end of
// each index round), so that the journal can start over.
func (j *Journal) syncIndex(force bool) error {
	j.mu.Lock()
	if j.indexBroken != nil {
		// Reported when it broke; a later sync that succeeded would prove
		// nothing (see indexBroken), so none is made.
		j.mu.Unlock()
		return nil
	}
	due := j.deferred != nil && j.durable < j.indexed && (force || j.indexed == j.head.Size && j.off >= journalSyncAt)
	size := j.indexed
	j.mu.Unlock()
	if !due {
		return nil
	}
	if err := j.deferred.SyncIndex(); err != nil {
		err = fmt.Errorf("store: audit index fdatasync failed; no append succeeds until the gateway restarts: %w", err)
		j.mu.Lock()
		j.indexBroken = err
		j.mu.Unlock()
		return err
	}
	j.mu.Lock()
	j.durable = max(j.durable, size)
	j.mu.Unlock()
	return nil
}

// signalProgress records an index attempt (err, or the number of batches
// that were indexed from the front of the queue) and wakes those waiting.
func (j *Journal) signalProgress(err error, batches int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if batches > 0 {
		j.indexed = j.queue[batches-1].next.Size
		if j.deferred == nil {
			j.durable = j.indexed
		}
		j.queue = j.queue[batches:]
		if len(j.queue) == 0 {
			j.queue = nil // let the indexed records go
		}
	}
	if err == nil && j.indexErr != nil {
		j.logger.Warn("audit index recovered", "size", j.indexed)
	}
	j.indexErr = err
	close(j.progress)
	j.progress = make(chan struct{})
}

// Close indexes what is journaled, releases the journal and closes the
// store.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		j.appendMu.Lock() // no append in flight
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		j.appendMu.Unlock()
		close(j.stop)
		<-j.indexDone
		<-j.syncDone
		var errs []error
		// Not needed for safety (the journal keeps what the index may lack),
		// but a stopped gateway's database is then whole on its own.
		errs = append(errs, j.syncIndex(true))
		if j.syncEvery > 0 && j.broken == nil {
			errs = append(errs, j.sync())
		}
		j.mu.Lock()
		if j.indexed < j.head.Size {
			errs = append(errs, fmt.Errorf("store: journal: %d events left unindexed (indexed on the next open): %v", j.head.Size-j.indexed, j.indexErr))
		}
		j.mu.Unlock()
		errs = append(errs, j.f.Close(), j.JournalIndex.Close())
		j.closeErr = errors.Join(errs...)
	})
	return j.closeErr
}
