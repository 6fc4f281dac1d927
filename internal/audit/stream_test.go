package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/webhook"
)

// siem is a webhook receiver as a SIEM would run it: it checks every
// delivery (method, headers, signature, that the lines are the events the
// range header names) and keeps what it accepted.
type siem struct {
	name   string
	secret []byte // nil: deliveries must be unsigned
	// delay holds the answer to the first delivery that long, after
	// accepting it: a receiver slower than the sender's timeout.
	delay time.Duration

	mu       sync.Mutex
	down     bool // answer 503
	attempts int
	posts    []delivery // accepted
	bad      []string   // protocol violations
}

type delivery struct {
	first, last int64
	body        []byte
}

func newSIEM(t *testing.T, name string, secret []byte) (*siem, *httptest.Server) {
	s := &siem{name: name, secret: secret}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *siem) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.attempts++
	if s.down {
		s.mu.Unlock()
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	d, why := s.check(r, body)
	if why != "" {
		s.bad = append(s.bad, why)
		s.mu.Unlock()
		http.Error(w, why, http.StatusBadRequest)
		return
	}
	s.posts = append(s.posts, d)
	delay := s.delay
	s.delay = 0
	s.mu.Unlock()
	time.Sleep(delay)
}

func (s *siem) check(r *http.Request, body []byte) (delivery, string) {
	var d delivery
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
		return d, fmt.Sprintf("%s with content type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if got := r.Header.Get(audit.ExportHeader); got != s.name {
		return d, fmt.Sprintf("%s = %q", audit.ExportHeader, got)
	}
	sig := r.Header.Get(webhook.SignatureHeader)
	if s.secret == nil && sig != "" || s.secret != nil && !webhook.Verify(s.secret, body, sig) {
		return d, "bad signature " + sig
	}
	first, last, ok := strings.Cut(r.Header.Get(audit.EventsHeader), "-")
	var err1, err2 error
	d.first, err1 = strconv.ParseInt(first, 10, 64)
	d.last, err2 = strconv.ParseInt(last, 10, 64)
	if !ok || err1 != nil || err2 != nil || d.last < d.first {
		return d, "bad range " + r.Header.Get(audit.EventsHeader)
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		return d, "body does not end in a newline"
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if int64(len(lines)) != d.last-d.first+1 {
		return d, fmt.Sprintf("%d lines for range %d-%d", len(lines), d.first, d.last)
	}
	for i, l := range lines {
		if idx, err := lineIndex(l); err != nil || idx != d.first+int64(i) {
			return d, fmt.Sprintf("line %d of %d-%d is event %d (%v)", i, d.first, d.last, idx, err)
		}
	}
	d.body = body
	return d, ""
}

// lineIndex reads the leaf index of a JSON lines or OCSF export line.
func lineIndex(line string) (int64, error) {
	var x struct {
		Index    *int64 `json:"index"`
		Unmapped struct {
			Index *int64 `json:"index"`
		} `json:"unmapped"`
	}
	if err := json.Unmarshal([]byte(line), &x); err != nil {
		return -1, err
	}
	switch {
	case x.Index != nil:
		return *x.Index, nil
	case x.Unmapped.Index != nil:
		return *x.Unmapped.Index, nil
	}
	return -1, fmt.Errorf("no index")
}

func (s *siem) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// received returns the accepted deliveries, their event indexes in arrival
// order and the protocol violations seen.
func (s *siem) received() ([]delivery, []int64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := []int64{}
	for _, d := range s.posts {
		for i := d.first; i <= d.last; i++ {
			idx = append(idx, i)
		}
	}
	return append([]delivery(nil), s.posts...), idx, append([]string(nil), s.bad...)
}

// waitFor waits until cond holds of the receiver.
func (s *siem) waitFor(t *testing.T, what string, cond func(posts []delivery, idx []int64, attempts int) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		posts, idx, bad := s.received()
		s.mu.Lock()
		attempts := s.attempts
		s.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if cond(posts, idx, attempts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %d deliveries, events %v, %d attempts", what, len(posts), idx, attempts)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *siem) waitEvents(t *testing.T, n int) {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("%d events", n), func(_ []delivery, idx []int64, _ int) bool { return len(idx) >= n })
}

// upTo returns 0, 1, …, n-1.
func upTo(n int64) []int64 {
	out := []int64{}
	for i := int64(0); i < n; i++ {
		out = append(out, i)
	}
	return out
}

// counters records a Streamer's metric hooks.
type counters struct {
	failed, delivered, lag atomic.Int64
}

// syncLog is a log destination tests read while streamers write to it.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// streamer makes a Streamer of e's log to url with short waits, stopped
// when t ends.
func streamer(t *testing.T, e *env, url string, name string, secret []byte, c *counters, logs io.Writer, mod ...func(*audit.StreamConfig)) *audit.Streamer {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	cfg := audit.StreamConfig{
		Name: name, URL: url, Secret: secret,
		BatchSize: 4, Interval: 10 * time.Millisecond, Timeout: 5 * time.Second,
		Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	if c != nil {
		cfg.Failed = func() { c.failed.Add(1) }
		cfg.Delivered = func(n int) { c.delivered.Add(int64(n)) }
		cfg.Lag = func(n int64) { c.lag.Store(n) }
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := audit.NewStreamer(e.st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// waitCursor waits until the sink's cursor is at want: every delivery up
// to there has been answered, so stopping now cuts none short (which would
// legitimately send a batch again).
func waitCursor(t *testing.T, st store.Store, name string, want int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := st.ExportCursor(context.Background(), name)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %q = %d, %v; want %d", name, got, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cursorAt(t *testing.T, st store.Store, name string, want int64) {
	t.Helper()
	if got, err := st.ExportCursor(context.Background(), name); err != nil || got != want {
		t.Fatalf("cursor %q = %d, %v; want %d", name, got, err, want)
	}
}

// TestStream: every event reaches the receiver once, in index order, in
// batches, signed, in exactly the bytes `gatehouse audit export` writes;
// events appended while it runs follow.
func TestStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, newDB)
		secret := []byte("siem-hmac-key")
		rc, srv := newSIEM(t, "siem", secret)
		e.appendN(t, 10)
		var c counters
		s := streamer(t, e, srv.URL+"/in", "siem", secret, &c, nil)
		s.Start()
		rc.waitEvents(t, 10)
		e.appendN(t, 3)
		rc.waitEvents(t, 13)
		waitCursor(t, e.st, "siem", 13)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		posts, idx, _ := rc.received()
		if !reflect.DeepEqual(idx, upTo(13)) {
			t.Fatalf("events received %v, want 0…12 once each in order", idx)
		}
		var all bytes.Buffer
		for _, p := range posts {
			if p.last-p.first+1 > 4 {
				t.Errorf("delivery %d-%d is larger than the batch size", p.first, p.last)
			}
			all.Write(p.body)
		}
		var want bytes.Buffer
		if err := audit.ExportJSONL(ctx, &want, e.st, store.Query{Limit: -1}); err != nil {
			t.Fatal(err)
		}
		if all.String() != want.String() {
			t.Errorf("deliveries differ from audit export:\n%s\nwant:\n%s", all.String(), want.String())
		}
		cursorAt(t, e.st, "siem", 13)
		if c.delivered.Load() != 13 || c.failed.Load() != 0 || c.lag.Load() != 0 {
			t.Errorf("hooks: delivered %d, failed %d, lag %d", c.delivered.Load(), c.failed.Load(), c.lag.Load())
		}
	})
}

func TestStreamOCSF(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLiteDB)
	e.appendN(t, 6)
	rc, srv := newSIEM(t, "ocsf", nil) // no secret: no signature header
	s := streamer(t, e, srv.URL, "ocsf", nil, nil, nil, func(c *audit.StreamConfig) { c.Format = audit.FormatOCSF })
	s.Start()
	rc.waitEvents(t, 6)
	waitCursor(t, e.st, "ocsf", 6)
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	posts, idx, _ := rc.received()
	if !reflect.DeepEqual(idx, upTo(6)) {
		t.Fatalf("events received %v", idx)
	}
	var all, want bytes.Buffer
	for _, p := range posts {
		all.Write(p.body)
	}
	if err := audit.ExportOCSF(ctx, &want, e.st, store.Query{Limit: -1}); err != nil {
		t.Fatal(err)
	}
	if all.String() != want.String() {
		t.Errorf("deliveries differ from audit export --format ocsf:\n%s\nwant:\n%s", all.String(), want.String())
	}
}

// TestStreamReceiverOutage: while the receiver answers 503 nothing is lost
// or reordered; failures are logged (without the secret, the body or the
// URL's path) and counted, and delivery resumes when it recovers.
func TestStreamReceiverOutage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		e := newEnv(t, newDB)
		secret := []byte("siem-hmac-key")
		rc, srv := newSIEM(t, "siem", secret)
		e.appendN(t, 5)
		rc.setDown(true)
		var (
			c    counters
			logs syncLog
		)
		s := streamer(t, e, srv.URL+"/collector/token-abc123", "siem", secret, &c, &logs)
		s.Start()
		rc.waitFor(t, "failed attempts", func(_ []delivery, _ []int64, attempts int) bool { return attempts >= 3 })
		e.appendN(t, 6)
		rc.waitFor(t, "more failed attempts", func(_ []delivery, _ []int64, attempts int) bool { return attempts >= 5 })
		rc.setDown(false)
		rc.waitEvents(t, 11)
		waitCursor(t, e.st, "siem", 11)
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, idx, _ := rc.received(); !reflect.DeepEqual(idx, upTo(11)) {
			t.Fatalf("events received %v, want 0…10 once each in order", idx)
		}
		cursorAt(t, e.st, "siem", 11)
		if c.failed.Load() < 4 || c.delivered.Load() != 11 {
			t.Errorf("hooks: failed %d (want ≥ 4), delivered %d", c.failed.Load(), c.delivered.Load())
		}
		l := logs.String()
		if !strings.Contains(l, "audit export: delivery failed") || !strings.Contains(l, "HTTP 503") || !strings.Contains(l, "sink=siem") {
			t.Errorf("failures not logged:\n%s", l)
		}
		for _, leak := range []string{string(secret), "token-abc123", "FROM payments", "sha256="} {
			if strings.Contains(l, leak) {
				t.Errorf("the log contains %q:\n%s", leak, l)
			}
		}
	})
}

// TestStreamSlowReceiver: a receiver that takes longer than the timeout to
// answer gets the batch again (at least once); deduplicated by index,
// nothing is missing and the order holds.
func TestStreamSlowReceiver(t *testing.T) {
	e := newEnv(t, storetest.SQLiteDB)
	rc, srv := newSIEM(t, "siem", nil)
	rc.delay = 500 * time.Millisecond
	e.appendN(t, 6)
	var c counters
	s := streamer(t, e, srv.URL, "siem", nil, &c, nil, func(c *audit.StreamConfig) { c.Timeout = 100 * time.Millisecond })
	s.Start()
	rc.waitFor(t, "a repeated delivery and all events", func(posts []delivery, idx []int64, _ int) bool {
		return len(posts) >= 2 && posts[1].first == 0 && idx[len(idx)-1] == 5
	})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, idx, _ := rc.received()
	var dedup []int64
	seen := map[int64]bool{}
	for _, i := range idx {
		if !seen[i] {
			seen[i] = true
			dedup = append(dedup, i)
		}
	}
	if !reflect.DeepEqual(dedup, upTo(6)) || c.failed.Load() < 1 {
		t.Fatalf("received %v (deduplicated %v), %d failures", idx, dedup, c.failed.Load())
	}
}

// TestStreamRestart: a new Streamer on the same store (a restarted gateway)
// resumes at the cursor: nothing the receiver accepted comes again, nothing
// appended in between is lost. Another sink has a cursor of its own.
func TestStreamRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		ctx := context.Background()
		e := newEnv(t, newDB)
		rc, srv := newSIEM(t, "siem", nil)
		e.appendN(t, 5)
		first := streamer(t, e, srv.URL, "siem", nil, nil, nil)
		first.Start()
		rc.waitEvents(t, 5)
		waitCursor(t, e.st, "siem", 5)
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cursorAt(t, e.st, "siem", 5)
		e.appendN(t, 4) // while "the gateway is down"

		second := streamer(t, e, srv.URL, "siem", nil, nil, nil)
		second.Start()
		rc.waitEvents(t, 9)
		waitCursor(t, e.st, "siem", 9)
		if err := second.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		posts, idx, _ := rc.received()
		if !reflect.DeepEqual(idx, upTo(9)) {
			t.Fatalf("events received %v, want 0…8 once each", idx)
		}
		if last := posts[len(posts)-1]; last.last != 8 {
			t.Fatalf("last delivery %d-%d", last.first, last.last)
		}
		cursorAt(t, e.st, "siem", 9)

		other, osrv := newSIEM(t, "archive", nil)
		third := streamer(t, e, osrv.URL, "archive", nil, nil, nil)
		if err := third.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, idx, _ := other.received(); !reflect.DeepEqual(idx, upTo(9)) {
			t.Fatalf("a new sink received %v, want everything", idx)
		}
		cursorAt(t, e.st, "siem", 9)
	})
}

// TestStreamCursorWriteFails: when the store cannot record the cursor after
// the receiver accepted a batch, the batch is delivered again (at least
// once) until it can, and nothing is skipped.
func TestStreamCursorWriteFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newDB func(*testing.T) storetest.DB) {
		e := newEnv(t, newDB)
		pg := strings.Contains(t.Name(), "postgres")
		failOn := `CREATE TRIGGER fail BEFORE INSERT OR UPDATE ON audit_export_cursors BEGIN SELECT RAISE(ABORT, 'disk full'); END`
		drop := `DROP TRIGGER fail`
		if pg {
			failOn = `CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
				CREATE TRIGGER fail BEFORE INSERT OR UPDATE ON audit_export_cursors FOR EACH ROW EXECUTE FUNCTION fail()`
			drop = `DROP TRIGGER fail ON audit_export_cursors`
		} else {
			// SQLite has no INSERT OR UPDATE trigger; the first advance is an insert.
			failOn = `CREATE TRIGGER fail BEFORE INSERT ON audit_export_cursors BEGIN SELECT RAISE(ABORT, 'disk full'); END`
		}
		if err := e.db.Exec(failOn); err != nil {
			t.Fatal(err)
		}
		rc, srv := newSIEM(t, "siem", nil)
		e.appendN(t, 3)
		var c counters
		s := streamer(t, e, srv.URL, "siem", nil, &c, nil)
		s.Start()
		rc.waitFor(t, "a repeated delivery", func(posts []delivery, _ []int64, _ int) bool { return len(posts) >= 2 })
		cursorAt(t, e.st, "siem", 0)
		if err := e.db.Exec(drop); err != nil {
			t.Fatal(err)
		}
		e.appendN(t, 2)
		deadline := time.Now().Add(15 * time.Second)
		for {
			if pos, err := e.st.ExportCursor(context.Background(), "siem"); err == nil && pos == 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("cursor did not advance after the store recovered")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		posts, _, _ := rc.received()
		// Every delivery starts at or before the end of the one before it:
		// repeated, never skipped.
		var next int64
		for _, p := range posts {
			if p.first > next {
				t.Fatalf("delivery %d-%d skips events from %d", p.first, p.last, next)
			}
			next = max(next, p.last+1)
		}
		if next != 5 || c.failed.Load() < 1 {
			t.Fatalf("received up to %d, %d failures", next, c.failed.Load())
		}
	})
}

// TestStreamShutdown: Shutdown delivers what was appended since the last
// poll, returns promptly even when the receiver is down (bounded by its
// context), and leaves no goroutine behind.
func TestStreamShutdown(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLiteDB)
	rc, srv := newSIEM(t, "siem", nil)
	down, dsrv := newSIEM(t, "down", nil)
	down.setDown(true)
	before := runtime.NumGoroutine()

	e.appendN(t, 3)
	slow := streamer(t, e, srv.URL, "siem", nil, nil, nil, func(c *audit.StreamConfig) { c.Interval = time.Hour })
	slow.Start()
	rc.waitEvents(t, 3)
	waitCursor(t, e.st, "siem", 3)
	e.appendN(t, 2) // the loop sleeps for an hour: only Shutdown's last pass sends these
	if err := slow.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, idx, _ := rc.received(); !reflect.DeepEqual(idx, upTo(5)) {
		t.Fatalf("events received %v, want 0…4", idx)
	}

	stuck := streamer(t, e, dsrv.URL, "down", nil, nil, nil, func(c *audit.StreamConfig) { c.Backoff, c.MaxBackoff = time.Hour, time.Hour })
	stuck.Start()
	down.waitFor(t, "a failed attempt", func(_ []delivery, _ []int64, attempts int) bool { return attempts >= 1 })
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := stuck.Shutdown(sctx); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("Shutdown with the receiver down = %v, want its last attempt's failure", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %s while the loop waited out an hour's backoff", d)
	}
	cursorAt(t, e.st, "down", 0)

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Shutdown, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamGap: events pruned before a sink received them cannot be sent;
// the Streamer says so (log, failure count) and delivers the rest, and the
// receiver sees the gap in the range header.
func TestStreamGap(t *testing.T) {
	e, _ := prunedEnv(t, storetest.SQLiteDB)
	rc, srv := newSIEM(t, "siem", nil)
	var (
		c    counters
		logs syncLog
	)
	s := streamer(t, e, srv.URL, "siem", nil, &c, &logs)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	posts, idx, _ := rc.received()
	if len(posts) == 0 || posts[0].first != 10 || idx[len(idx)-1] != 20 || len(idx) != 11 {
		t.Fatalf("received %v", idx)
	}
	if c.failed.Load() != 1 || !strings.Contains(logs.String(), "deleted before this sink received them") ||
		!strings.Contains(logs.String(), "missing_to=9") {
		t.Errorf("gap not reported: %d failures, log:\n%s", c.failed.Load(), logs.String())
	}
}

func TestNewStreamerRefuses(t *testing.T) {
	e := newEnv(t, storetest.SQLiteDB)
	for _, cfg := range []audit.StreamConfig{
		{URL: "https://siem.example/"},
		{Name: "x", URL: "ftp://siem.example/secret-path"},
		{Name: "x", URL: "https:///secret-path"},
		{Name: "x", URL: "https://siem.example/", Format: "cef"},
	} {
		if _, err := audit.NewStreamer(e.st, cfg); err == nil || strings.Contains(err.Error(), "secret-path") {
			t.Errorf("NewStreamer(%+v) = %v", cfg, err)
		}
	}
}
