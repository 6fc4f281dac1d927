package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/webhook"
)

// Headers of a stream delivery (see Streamer).
const (
	// ExportHeader names the sink (StreamConfig.Name).
	ExportHeader = "X-Gatehouse-Export"
	// EventsHeader is "<first>-<last>": the leaf indexes of the first and
	// last event in the body, inclusive.
	EventsHeader = "X-Gatehouse-Events"
)

// Stream defaults, used where a StreamConfig field is zero.
const (
	DefaultStreamBatch      = 500
	DefaultStreamInterval   = 2 * time.Second
	DefaultStreamTimeout    = 10 * time.Second
	DefaultStreamBackoff    = time.Second
	DefaultStreamMaxBackoff = time.Minute
)

// maxStreamBody caps a delivery's body: a POST stops taking events once it
// is this large, so a batch of huge statements does not become one huge
// request. An event larger than this goes alone.
const maxStreamBody = 4 << 20

// StreamConfig configures a Streamer.
type StreamConfig struct {
	// Name identifies the sink: the key of its cursor in the store and the
	// ExportHeader value. Renaming a sink starts it from the beginning.
	Name string
	// URL receives the deliveries (http or https).
	URL string
	// Format is FormatJSONL (the default) or FormatOCSF.
	Format string
	// Secret, if not empty, is the HMAC-SHA256 key of each body's
	// webhook.SignatureHeader.
	Secret []byte
	// BatchSize caps the events in one delivery (default 500).
	BatchSize int
	// Interval is how often the store is polled for new events once the
	// sink has everything (default 2s).
	Interval time.Duration
	// Timeout bounds each POST (default 10s).
	Timeout time.Duration
	// Backoff is the wait after a failed delivery (default 1s), doubled
	// after each further failure up to MaxBackoff (default 1m).
	Backoff, MaxBackoff time.Duration
	// Client sends the deliveries. The default follows no redirects: a 3xx
	// answer is a failure, so that audit events go only where configured.
	Client *http.Client
	Logger *slog.Logger
	// Hooks for metrics, all optional. Failed is called after every failed
	// delivery attempt and for every gap (see Streamer); Delivered with the
	// size of every delivery the receiver accepted; Lag with the number of
	// events not yet accepted, after every pass over the log.
	Failed    func()
	Delivered func(events int)
	Lag       func(events int64)
}

// A Streamer delivers the audit log to a webhook receiver (a SIEM), every
// event, in index order, at least once, across restarts and receiver
// outages.
//
// Each delivery is one POST of up to BatchSize events in the format of
// `gatehouse audit export` (application/x-ndjson: one line per event, each
// ending in a newline), with ExportHeader, EventsHeader and, with a secret,
// webhook.SignatureHeader. Any 2xx answer accepts the whole body; the
// Streamer then advances the sink's cursor in the store
// (store.ExportCursors), so the next delivery, in this process or after a
// restart, starts after the last accepted event. Anything else (a transport
// error, a timeout, another status) is retried with the same events after a
// backoff, forever: nothing is skipped. A receiver may therefore see a range
// again, when the gateway stopped or the store failed between its answer
// and the cursor's update, or when replicas sharing a PostgreSQL store
// stream to the same sink; it drops events whose index it already has.
//
// A receiver should also check that each range starts right after the one
// before. A gap means events are gone from the store before this sink got
// them: retention pruned them (keep audit.retention longer than any receiver
// outage) or someone moved the cursor. The Streamer logs a gap as an error
// and counts it as a failure, then delivers what there is.
//
// An event that cannot be encoded (only a damaged leaf fails to) stops the
// stream there, with an error at every retry, until the store is repaired:
// skipping it would break the promise of order. `gatehouse audit verify`
// names the damage.
//
// Reading the log for a stream is not recorded as an audit.read event, as
// queries and exports are: each such event would itself have to be
// streamed, so the stream would never catch up. The sink's configuration
// is on the record (config.load hashes the config file), and the receiver
// holds what was read.
type Streamer struct {
	cfg    StreamConfig
	st     store.Store
	line   func(store.Record) ([]byte, error)
	client *http.Client
	log    *slog.Logger

	// passMu serialises passes over the log and guards the fields below.
	passMu sync.Mutex
	pos    int64 // the cursor: the index of the next event to deliver
	known  bool  // pos was read from the store and is still believed current
	gapAt  int64 // the position whose gap was last reported, or -1

	cancel context.CancelFunc // ends the loop
	done   chan struct{}      // closed when the loop has returned
}

// NewStreamer returns a Streamer of the log in st to the sink cfg
// describes. It does nothing until Start or Flush.
func NewStreamer(st store.Store, cfg StreamConfig) (*Streamer, error) {
	if cfg.Name == "" {
		return nil, errors.New("audit: stream: no sink name")
	}
	if cfg.Format == "" {
		cfg.Format = FormatJSONL
	}
	line, ok := LineEncoder(cfg.Format)
	if !ok {
		return nil, fmt.Errorf("audit: stream %s: unknown format %q", cfg.Name, cfg.Format)
	}
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL itself stays out of the error: it may carry a token.
		return nil, fmt.Errorf("audit: stream %s: the URL is not an http or https URL", cfg.Name)
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.Interval, DefaultStreamInterval}, {&cfg.Timeout, DefaultStreamTimeout},
		{&cfg.Backoff, DefaultStreamBackoff}, {&cfg.MaxBackoff, DefaultStreamMaxBackoff}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultStreamBatch
	}
	s := &Streamer{cfg: cfg, st: st, line: line, client: cfg.Client, log: cfg.Logger, gapAt: -1}
	if s.client == nil {
		// A transport of its own, so that Shutdown can close its idle
		// connections (and their goroutines) without touching anyone else's.
		s.client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", cfg.Name, "target", streamTarget(cfg.URL))
	return s, nil
}

// streamTarget names a URL for logs by scheme and host only: paths and
// queries of collector URLs often carry a token.
func streamTarget(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Scheme + "://" + u.Host
	}
	return "webhook"
}

// Start runs the delivery loop in a goroutine until Shutdown: a pass over
// everything not yet delivered, then a wait of Interval (or of the backoff,
// after a failure), and again. Call it at most once.
func (s *Streamer) Start() {
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

func (s *Streamer) run(ctx context.Context) {
	var backoff time.Duration
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.Flush(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := s.cfg.Interval
		if err != nil {
			backoff = min(max(2*backoff, s.cfg.Backoff), s.cfg.MaxBackoff)
			wait = backoff
			s.failed()
			s.log.Error("audit export: delivery failed; retrying", "err", err, "retry_in", wait.String())
		} else {
			backoff = 0
		}
		t.Reset(wait)
	}
}

// Shutdown stops the loop and waits for it, then makes one last pass
// bounded by ctx, without retries, so that events appended since the
// loop's last poll (the gateway's stop among them) are not left for the
// next start. Events it cannot deliver stay behind the cursor: the next
// start delivers them. It returns that pass's error.
func (s *Streamer) Shutdown(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	defer s.client.CloseIdleConnections()
	if err := s.Flush(ctx); err != nil {
		s.failed()
		return err
	}
	return nil
}

// Flush delivers every event in the store that the sink has not accepted,
// batch after batch, and returns at the first failure without retrying.
// It is safe to call while the loop runs: passes take turns.
func (s *Streamer) Flush(ctx context.Context) error {
	s.passMu.Lock()
	defer s.passMu.Unlock()
	for {
		n, err := s.deliverLocked(ctx)
		// After every batch: under steady load a pass may not end for a
		// long time, and the lag is what shows a sink falling behind.
		s.reportLagLocked(ctx)
		if err != nil {
			return fmt.Errorf("audit: stream %s: %w", s.cfg.Name, err)
		}
		if n == 0 {
			return nil
		}
	}
}

// deliverLocked delivers the next batch and returns its size, 0 when there
// is nothing to deliver.
func (s *Streamer) deliverLocked(ctx context.Context) (int, error) {
	if !s.known {
		pos, err := s.st.ExportCursor(ctx, s.cfg.Name)
		if err != nil {
			return 0, err
		}
		s.pos, s.known = pos, true
	}
	recs, err := s.st.Events(ctx, store.Query{From: s.pos, Limit: s.cfg.BatchSize})
	if err != nil {
		return 0, fmt.Errorf("read events from %d: %w", s.pos, err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if first := recs[0].Index; first != s.pos && s.gapAt != s.pos {
		s.gapAt = s.pos // once, not at every retry of the batch after it
		s.failed()
		s.log.Error("audit export: events were deleted before this sink received them", "missing_from", s.pos, "missing_to", first-1)
	}
	var body bytes.Buffer
	n := 0
	for _, r := range recs {
		if n > 0 && body.Len() >= maxStreamBody {
			break
		}
		b, err := s.line(r)
		if err != nil {
			return 0, err
		}
		body.Write(b)
		body.WriteByte('\n')
		n++
	}
	first, last := recs[0].Index, recs[n-1].Index
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	h.Set(ExportHeader, s.cfg.Name)
	h.Set(EventsHeader, strconv.FormatInt(first, 10)+"-"+strconv.FormatInt(last, 10))
	if len(s.cfg.Secret) > 0 {
		h.Set(webhook.SignatureHeader, webhook.Sign(s.cfg.Secret, body.Bytes()))
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err = webhook.Post(pctx, s.client, s.cfg.URL, body.Bytes(), h)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("deliver events %d-%d: %w", first, last, err)
	}
	if s.cfg.Delivered != nil {
		s.cfg.Delivered(n)
	}
	// The receiver has the batch: a stop arriving now must not keep the
	// cursor from saying so, or the batch would be sent again.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	err = s.st.AdvanceExportCursor(actx, s.cfg.Name, s.pos, last+1)
	cancel()
	switch {
	case errors.Is(err, store.ErrCursorMoved):
		// Another replica delivered too: go on from wherever it got to.
		s.known = false
	case err != nil:
		// The receiver has the batch but the store does not know: it is
		// delivered again, which at-least-once allows.
		return 0, fmt.Errorf("events %d-%d delivered, cursor not saved: %w", first, last, err)
	default:
		s.pos = last + 1
	}
	return n, nil
}

// reportLagLocked reports how many events the sink has yet to accept.
func (s *Streamer) reportLagLocked(ctx context.Context) {
	if s.cfg.Lag == nil || !s.known {
		return
	}
	h, err := s.st.Head(ctx)
	if err != nil {
		return
	}
	s.cfg.Lag(max(h.Size-s.pos, 0))
}

func (s *Streamer) failed() {
	if s.cfg.Failed != nil {
		s.cfg.Failed()
	}
}
