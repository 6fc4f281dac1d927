package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ErrClosed is returned by Append after Shutdown has begun.
var ErrClosed = errors.New("audit: log is shut down")

// Log is the tamper-evident audit log. It is safe for concurrent use.
type Log struct {
	store  store.Store
	signer note.Signer
	clock  func() time.Time
	logger *slog.Logger
	opts   options

	mu   sync.Mutex // guards the fields below
	cond *sync.Cond // signalled when pending grows or closed is set
	// pending are the appends waiting for the committer, in index order.
	pending []*request
	// waiting counts the pending requests whose caller waits (Append).
	waiting    int
	timerArmed bool // a lazy-delay wake-up is scheduled
	// committing is set while a batch is being written, by the committer
	// goroutine or by an Append caller leading the commit itself; batches
	// are written one at a time.
	committing bool
	// lastTime is the latest event time handed out; times never go back.
	lastTime time.Time
	closed   bool
	// failure is the store outage in progress, nil while writes succeed.
	failure *failureWindow

	// head is the end of the tree as this process last wrote or read it.
	// Only the committer goroutine touches it.
	head store.Head
	// recs is the last batch's records, kept for its array (a commit a
	// statement would otherwise allocate); like head, only the goroutine
	// committing touches it. Stores keep no reference to what they are
	// given (store.Store.AppendEvents).
	recs []store.Record

	ckMu       sync.Mutex // serialises Checkpoint; guards lastSigned
	lastSigned int64

	batches, events, failed, restamped atomic.Int64
	// restampWarned is when restamp last logged a clock behind the log's;
	// guarded by mu.
	restampWarned time.Time

	facts factsCache // canonical facts by their encoding, for enqueue

	stopLoop chan struct{}  // closed by Shutdown to stop the checkpoint loop
	wg       sync.WaitGroup // the committer and the checkpoint loop
	shutOnce sync.Once
}

type request struct {
	// rec is the event, encoded, without Index and Hash. A re-stamp
	// rewrites its time in place (restampData): the request need not keep
	// the Event, which would more than double its size (544 bytes, not 248)
	// and the garbage each statement leaves.
	rec  store.Record
	done chan result // buffered: the committer never blocks on a caller; nil when lazy
	// lazy requests (AppendAfter) do not start a commit of their own: they
	// ride along with the next waited-for append, or are committed once
	// they are lazyDelay old.
	lazy bool
	at   time.Time // when queued, for lazyDelay
}

// lazyDelay bounds how long an AppendAfter event waits for a commit to
// share before it gets one of its own.
const lazyDelay = 20 * time.Millisecond

type result struct {
	index int64
	err   error
}

// failureWindow is an outage of the store as seen by Append (PCI DSS 10.7).
type failureWindow struct {
	start, last time.Time
	events      int64 // events refused
	batches     int64
	lastErr     string
}

// Option configures a Log.
type Option func(*options)

type options struct {
	interval     time.Duration
	sinks        []CheckpointSink
	maxBatch     int
	origin       string
	writeTimeout time.Duration
	observer     Observer
}

// WithCheckpointInterval signs a checkpoint every d if the tree grew (0, the
// default, only on Checkpoint and Shutdown).
func WithCheckpointInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithSinks publishes every checkpoint to sinks after it is stored.
func WithSinks(sinks ...CheckpointSink) Option {
	return func(o *options) { o.sinks = append(o.sinks, sinks...) }
}

// WithMaxBatch caps how many events go into one store transaction (default
// 1024).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithOrigin sets the checkpoint origin line (default: the signer's name).
func WithOrigin(origin string) Option { return func(o *options) { o.origin = origin } }

// WithWriteTimeout bounds one store transaction (default 30s); past it the
// batch fails and its callers get an error.
func WithWriteTimeout(d time.Duration) Option { return func(o *options) { o.writeTimeout = d } }

// Observer receives the timings of the log's writes, for metrics: the audit
// record is what a statement waits for before it is forwarded, so its
// latency is most of what the gateway adds. The methods are called on the
// append path and must return at once.
type Observer interface {
	// ObserveCommit reports one batch written to the store: the events it
	// held (its callers' and the events riding along) and how long the
	// write took, retries after conflicts included, whether or not it
	// succeeded.
	ObserveCommit(events int, took time.Duration)
	// ObserveWait reports how long an Append waited for its event to be
	// durable: the commit in progress it queued behind, and its own.
	ObserveWait(took time.Duration)
}

// WithObserver reports commit and wait times to o.
func WithObserver(o Observer) Option { return func(opts *options) { opts.observer = o } }

// Open opens the log kept in st. signer signs checkpoints; clock stamps
// events (time.Now when nil); logger receives operational messages (never
// event contents). Shutdown must be called to stop it.
func Open(ctx context.Context, st store.Store, signer note.Signer, clock func() time.Time, logger *slog.Logger, opts ...Option) (*Log, error) {
	if signer == nil {
		return nil, errors.New("audit: open: no signer")
	}
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{maxBatch: 1024, origin: signer.Name(), writeTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	head, err := st.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := checkHead(head); err != nil {
		return nil, err
	}
	l := &Log{store: st, signer: signer, clock: clock, logger: logger, opts: o, head: head, stopLoop: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	if head.Size > 0 {
		recs, err := st.Events(ctx, store.Query{From: head.Size - 1, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
		if len(recs) == 1 {
			l.lastTime = recs[0].Time
		}
	}
	if c, err := st.LatestCheckpoint(ctx); err == nil {
		l.lastSigned = c.Size
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	l.wg.Add(1)
	go l.commitLoop()
	if o.interval > 0 {
		l.wg.Add(1)
		go l.checkpointLoop()
	}
	return l, nil
}

// Append records ev and returns its leaf index once it is durable in the
// store. Concurrent calls are committed together (group commit): one store
// transaction, one fsync, per batch. On error the event is not recorded and
// the caller must refuse whatever it was about to do (fail closed).
//
// When no batch is being written, the caller writes its own (with whatever
// else is queued) instead of handing it to the committer goroutine: a
// client running one statement at a time then pays no goroutine switch for
// its audit record, which measured tens of microseconds each way on a
// two-core machine. Callers that arrive during a commit share the next one.
//
// Append sets ev.Time from the clock, never earlier than the previous
// event's, so index order is time order. If ctx ends first Append returns
// ctx.Err() although the event may still be committed; a caller writing a
// batch itself returns when the write does, within the write timeout
// (WithWriteTimeout), since the batch holds other callers' events too.
//
// The log keeps ev.Tables (the store indexes the event by them) until the
// event is stored: the caller must not change them after Append or
// AppendAfter. The rest of ev is encoded before either returns, even for
// an event queued without waiting, so the caller may reuse the buffers
// behind Facts and Params at once.
func (l *Log) Append(ctx context.Context, ev Event) (int64, error) {
	req, err := l.enqueue(ev, false)
	if err != nil {
		return 0, err
	}
	select {
	case r := <-req.done:
		if o := l.opts.observer; o != nil {
			o.ObserveWait(time.Since(req.at))
		}
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// AppendAfter records ev without waiting for it to be durable. It is for
// events about what already happened (a statement's outcome): nothing waits
// on them, so they need no commit of their own and share the next one. A
// failure to record is counted in Stats and logged by the log's failure
// window, like any other.
func (l *Log) AppendAfter(ev Event) error {
	_, err := l.enqueue(ev, true)
	return err
}

// enqueue stamps, encodes and queues ev. A waited-for event with no commit
// in progress is committed before enqueue returns (see Append).
func (l *Log) enqueue(ev Event, lazy bool) (*request, error) {
	req := &request{lazy: lazy}
	if !lazy {
		// Nothing waits on a lazy event's result: it needs no channel.
		req.done = make(chan result, 1)
	}
	// Normalising (re-encoding the facts, sorting tables) does not depend
	// on the time: do it before taking the lock.
	ce, err := ev.canonical(&l.facts)
	if err != nil {
		return nil, fmt.Errorf("audit: encode %s event: %w", ev.Kind, err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	// Stamping, encoding and queueing under one lock keeps queue order and
	// time order the same. Encoding a statement event takes well under a
	// microsecond (BenchmarkAppendEvent).
	ce.Time = l.nowLocked()
	data, err := appendCanonicalEvent(make([]byte, 0, eventSizeHint(&ce)), &ce)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("audit: encode %s event: %w", ev.Kind, err)
	}
	req.rec = record(&ce, data)
	req.at = time.Now() // real time: the delay is about latency, not the log's clock
	l.pending = append(l.pending, req)
	switch {
	case lazy:
		// Nothing waits on it: the next commit takes it along, or the timer
		// readyLocked arms does once it is lazyDelay old.
		l.armTimerLocked(req.at.Add(lazyDelay))
		l.mu.Unlock()
	case l.committing:
		// The writer of the batch in progress wakes the committer when it
		// is done, and this request goes in the next batch.
		l.waiting++
		l.mu.Unlock()
	default:
		l.waiting++
		l.commitNextLocked() // unlocks
	}
	return req, nil
}

// commitNextLocked takes the next batch off the queue and commits it in the
// calling goroutine. It is called with l.mu held and no commit in progress,
// and returns with l.mu released, after waking the committer if more is
// queued or the log is closing.
func (l *Log) commitNextLocked() {
	l.committing = true
	n := min(len(l.pending), l.opts.maxBatch)
	batch := l.pending[:n:n]
	l.pending = l.pending[n:]
	for _, r := range batch {
		if !r.lazy {
			l.waiting--
		}
	}
	var window *request
	if l.failure != nil {
		// The outage is over if this batch commits: record it in the same
		// transaction, ahead of the events that prove the store is back.
		window = l.windowEventLocked(batch[0].rec.Time)
	}
	l.mu.Unlock()
	l.commit(batch, window)
	l.mu.Lock()
	l.committing = false
	if len(l.pending) > 0 || l.closed {
		l.cond.Signal()
	}
	l.mu.Unlock()
}

// readyLocked reports whether the committer should commit now: someone
// waits, the log is closing, or the oldest lazy event has waited long
// enough. Otherwise it arms a timer that wakes the committer when the
// oldest lazy event comes due.
func (l *Log) readyLocked() bool {
	if l.committing {
		return false
	}
	if len(l.pending) == 0 {
		return l.closed
	}
	if l.waiting > 0 || l.closed {
		return true
	}
	due := l.pending[0].at.Add(lazyDelay)
	if !time.Now().Before(due) {
		return true
	}
	l.armTimerLocked(due)
	return false
}

// armTimerLocked makes sure the committer is woken at due, or earlier.
func (l *Log) armTimerLocked(due time.Time) {
	if l.timerArmed {
		return
	}
	l.timerArmed = true
	time.AfterFunc(time.Until(due)+time.Millisecond, func() {
		l.mu.Lock()
		l.timerArmed = false
		l.cond.Signal()
		l.mu.Unlock()
	})
}

func (l *Log) nowLocked() time.Time {
	t := l.clock().UTC()
	if t.Before(l.lastTime) {
		t = l.lastTime
	}
	l.lastTime = t
	return t
}

func (l *Log) commitLoop() {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		for !l.readyLocked() {
			l.cond.Wait()
		}
		if len(l.pending) == 0 {
			l.mu.Unlock()
			return // closed and drained
		}
		l.commitNextLocked()
	}
}

// windowEventLocked builds the store.failure_window event. It is stamped t,
// the time of the first event that follows it, so that time order holds.
func (l *Log) windowEventLocked(t time.Time) *request {
	f := l.failure
	ev := Event{
		Kind:   KindStoreFailureWindow,
		Time:   t,
		Reason: "audit store unavailable; events in this window were refused",
		Extra: map[string]any{
			"start":          f.start.Format(time.RFC3339Nano),
			"end":            f.last.Format(time.RFC3339Nano),
			"failed_events":  f.events,
			"failed_batches": f.batches,
			"last_error":     f.lastErr,
		},
	}
	ce, _ := ev.canonical(nil) // no facts: cannot fail
	data, _ := marshal(ce)
	return &request{rec: record(&ce, data)}
}

// commit writes one batch, retrying when another replica appended first.
func (l *Log) commit(batch []*request, window *request) {
	all := batch
	if window != nil {
		all = append([]*request{window}, batch...)
	}
	recs := l.recs[:0]
	for _, r := range all {
		recs = append(recs, r.rec)
	}
	l.recs = recs
	defer clear(recs) // the events' data need not live until the next batch
	for i := range recs {
		recs[i].Hash = tlog.RecordHash(recs[i].Data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.writeTimeout)
	defer cancel()
	var (
		next store.Head
		err  error
	)
	if o := l.opts.observer; o != nil {
		n, start := len(recs), time.Now()
		defer func() { o.ObserveCommit(n, time.Since(start)) }()
	}
	for attempt := 0; ; attempt++ {
		// A fresh head each attempt: l.head stays as it was until the
		// store has the batch.
		next = ownHead(l.head, int64(len(recs)))
		for i := range recs {
			recs[i].Index = next.Size
			extend(&next, recs[i].Hash)
		}
		err = l.store.AppendEvents(ctx, recs, next)
		var conflict *store.ConflictError
		if !errors.As(err, &conflict) {
			break
		}
		// Another replica appended first: continue the tree from the head
		// it left. Every conflict means some replica made progress; past a
		// few in a row, back off a little so two replicas stop colliding in
		// lockstep. The write timeout bounds the whole loop.
		if err = checkHead(conflict.Head); err != nil {
			break
		}
		l.head = conflict.Head
		if err = l.restamp(recs, conflict.Last); err != nil {
			break
		}
		if attempt >= 3 {
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt-3, 6)))):
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		l.failed.Add(int64(len(batch)))
		l.mu.Lock()
		if l.failure == nil {
			l.failure = &failureWindow{start: l.clock().UTC()}
			l.logger.Error("audit store failing: refusing events", "err", err)
		}
		l.failure.last = l.clock().UTC()
		l.failure.events += int64(len(batch))
		l.failure.batches++
		l.failure.lastErr = err.Error()
		l.mu.Unlock()
		for _, r := range batch {
			if r.done != nil {
				r.done <- result{err: fmt.Errorf("audit: event not recorded: %w", err)}
			}
		}
		return
	}
	l.head = next
	l.batches.Add(1)
	l.events.Add(int64(len(recs)))
	if window != nil {
		l.mu.Lock()
		l.logger.Warn("audit store recovered", "failed_events", l.failure.events, "since", l.failure.start)
		l.failure = nil
		l.mu.Unlock()
		recs = recs[1:]
	}
	for i, r := range batch {
		if r.done != nil {
			r.done <- result{index: recs[i].Index}
		}
	}
}

// restamp moves the times of the batch's events (all, encoded in recs) that
// are earlier than last, the time of the log's last event, up to it: the
// stores keep index order and time order the same (see
// store.ConflictError), and another replica appended a later event first
// (its clock is ahead, or it stamped later and committed first). Later
// events of this process are stamped no earlier either, as after a restart
// (see Open): times never go back.
func (l *Log) restamp(recs []store.Record, last time.Time) error {
	if last.IsZero() || !recs[0].Time.Before(last) {
		return nil // a batch's times do not go back, so none is earlier
	}
	last = last.UTC()
	n := 0
	for i := range recs {
		if !recs[i].Time.Before(last) {
			break
		}
		data, err := restampData(recs[i].Data, last)
		if err != nil {
			return fmt.Errorf("audit: re-stamp %s event: %w", recs[i].Kind, err)
		}
		recs[i].Time, recs[i].Data, recs[i].Hash = last, data, tlog.RecordHash(data)
		n++
	}
	l.restamped.Add(int64(n))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastTime.Before(last) {
		l.lastTime = last
	}
	// Re-stamps of a few microseconds are commit order (another replica
	// stamped later but committed first); this clock a second behind the
	// log's last event is a clock to fix (PCI DSS 10.6): a line a minute.
	clockBehind := last.Sub(l.clock())
	if now := time.Now(); clockBehind >= time.Second && now.Sub(l.restampWarned) >= time.Minute {
		l.restampWarned = now
		l.logger.Warn("audit events re-stamped: this gateway's clock is behind the log's; check its time synchronisation and that of the other replicas (one ahead moves every replica's times)",
			"behind", clockBehind.String(), "events", n)
	}
	return nil
}

// Stats are counters since Open.
type Stats struct {
	Batches int64 // store transactions that committed
	Events  int64 // events committed, including failure-window events
	Failed  int64 // events refused because the store failed
	// Restamped counts events whose time was moved up to the log's last
	// event's because another replica appended a later one first (a
	// retried batch counts again).
	Restamped int64
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{Batches: l.batches.Load(), Events: l.events.Load(), Failed: l.failed.Load(), Restamped: l.restamped.Load()}
}

func (l *Log) checkpointLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stopLoop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), l.opts.interval)
			if _, err := l.checkpointIfGrown(ctx); err != nil {
				l.logger.Error("audit checkpoint failed", "err", err)
			}
			cancel()
		}
	}
}

// ErrEmpty is returned by Checkpoint for a log with no events.
var ErrEmpty = errors.New("audit: log is empty")

// Checkpoint signs the store's current tree head, stores the checkpoint and
// publishes it to the sinks. Sink failures are logged, not returned: the
// checkpoint is already stored.
func (l *Log) Checkpoint(ctx context.Context) (store.Checkpoint, error) {
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	return l.checkpointLocked(ctx)
}

func (l *Log) checkpointIfGrown(ctx context.Context) (bool, error) {
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	h, err := l.store.Head(ctx)
	if err != nil {
		return false, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if h.Size == 0 || h.Size <= l.lastSigned {
		return false, nil
	}
	_, err = l.checkpointLocked(ctx)
	return err == nil, err
}

func (l *Log) checkpointLocked(ctx context.Context) (store.Checkpoint, error) {
	// The store's head, not l.head: with replicas the store may be ahead,
	// and the committer owns l.head.
	h, err := l.store.Head(ctx)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if err := checkHead(h); err != nil {
		return store.Checkpoint{}, err
	}
	if h.Size == 0 {
		return store.Checkpoint{}, ErrEmpty
	}
	msg, err := SignTreeHead(TreeHead{Origin: l.opts.origin, Size: h.Size, Root: rootHash(h)}, l.signer)
	if err != nil {
		return store.Checkpoint{}, err
	}
	c := store.Checkpoint{Size: h.Size, Time: l.clock().UTC(), Note: msg}
	if err := l.store.PutCheckpoint(ctx, c); err != nil {
		return store.Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	l.lastSigned = h.Size
	for _, s := range l.opts.sinks {
		if err := s.Publish(ctx, c); err != nil {
			l.logger.Error("audit checkpoint not published", "sink", fmt.Sprint(s), "size", c.Size, "err", err)
		}
	}
	return c, nil
}

// Shutdown stops accepting events, commits those already queued, signs a
// final checkpoint if the tree grew and stops the background loop. It
// returns when all of that is done or ctx ends.
func (l *Log) Shutdown(ctx context.Context) error {
	var err error
	l.shutOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.cond.Broadcast()
		l.mu.Unlock()
		close(l.stopLoop)
		done := make(chan struct{})
		go func() { l.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("audit: shutdown: %w", ctx.Err())
			return
		}
		if _, cerr := l.checkpointIfGrown(ctx); cerr != nil {
			err = cerr
		}
	})
	return err
}
