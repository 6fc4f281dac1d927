package approval

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Options tune a Broker. The zero value is usable.
type Options struct {
	// ReplicaID names this gateway replica in Request.Holder. It must be
	// stable across restarts and unique among replicas sharing a store: on
	// start the broker withdraws the pending requests its previous run held
	// (their clients are gone). Default: the host name. Two replicas with
	// one id would withdraw each other's requests on restart; a changed id
	// leaves the old ones to expire.
	ReplicaID string
	// Timeout is how long a request waits for a decision when the caller
	// sets no Expires (config approvals.timeout; default 15m).
	Timeout time.Duration
	// ApproverGroups may decide any request, besides each request's
	// reviewer groups (config api.approver_groups).
	ApproverGroups []string
	// PollInterval is how often waited-for requests are re-read when the
	// store cannot push changes (SQLite; default 500ms). With a watching
	// store (PostgreSQL) they are re-read every SafetyPollInterval instead.
	PollInterval time.Duration
	// SafetyPollInterval re-reads waited-for requests on a watching store,
	// for notifications lost while its connection was down (default 10s).
	SafetyPollInterval time.Duration
	// SweepInterval is how often requests past their expiry are expired,
	// whoever holds them (default 5s). Waiters expire their own request on
	// time without it.
	SweepInterval time.Duration
	// NotifyTimeout bounds all attempts of one notifier for one request
	// (default 2m).
	NotifyTimeout time.Duration
	// MaskReason masks reviewers' free-text reasons before they are stored,
	// audited or sent to the client; nil keeps them as typed. Wire the
	// gateway's masker here: a reviewer may paste a card number.
	MaskReason func(string) string
	// BindKey keys Bind; nil means a random key per process (enough for
	// the holding replica to check its own statement).
	BindKey []byte
}

// Notifier tells reviewers about a new request. Notify is called once per
// request on its own goroutine and may retry within ctx; its failure is
// logged and never affects the request.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, r *Request) error
}

// Filter selects requests for List. Zero fields do not filter.
type Filter struct {
	Status     Status
	Principal  string
	Connection string
	Limit      int // 0: store.DefaultLimit; negative: no limit
}

// maxReason caps reviewers' reasons: they are stored, audited and sent to
// clients.
const maxReason = 1000

// maxConcurrentNotifications bounds the notifier goroutines doing network
// I/O at once; more wait their turn.
const maxConcurrentNotifications = 16

// Broker holds approval requests. It is safe for concurrent use; Shutdown
// stops it.
type Broker struct {
	st        store.ApprovalStore
	audit     *audit.Log
	notifiers []Notifier
	clock     func() time.Time
	log       *slog.Logger
	opts      Options
	bindKey   []byte
	watcher   store.ApprovalWatcher // nil: poll

	ctx    context.Context // ends at Shutdown: notifications, the watch
	cancel context.CancelFunc
	stop   chan struct{} // closed by Shutdown after held requests are withdrawn

	mu sync.Mutex // guards the fields below
	// waits has an entry per request someone Waits for.
	waits map[string]*wait
	// held are the requests this broker created that are still pending
	// as far as it knows: Shutdown withdraws them.
	held   map[string]struct{}
	closed bool

	decideMu sync.Mutex // serialises Decide within this process, see Decide

	watching atomic.Bool // the store's change feed is live
	inflight sync.WaitGroup
	notifSem chan struct{}
	wg       sync.WaitGroup // the loop goroutines and notifications
	shutOnce sync.Once
	shutErr  error
}

// wait is the wake-up channel of one request's waiters: closed and replaced
// whenever the request may have changed.
type wait struct {
	ch chan struct{}
	n  int
}

// NewBroker returns a running broker on st. auditLog records requests and
// decisions (nil: not recorded, for tests and tools). clock is time.Now when
// nil; logger discards when nil. Before returning it withdraws the requests
// a previous run of this replica left pending.
func NewBroker(st store.ApprovalStore, auditLog *audit.Log, notifiers []Notifier, clock func() time.Time, logger *slog.Logger, opts Options) (*Broker, error) {
	if st == nil {
		return nil, errors.New("approval: no store")
	}
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReplicaID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, fmt.Errorf("approval: no replica id and no host name: %v", err)
		}
		opts.ReplicaID = h
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&opts.Timeout, 15 * time.Minute}, {&opts.PollInterval, 500 * time.Millisecond},
		{&opts.SafetyPollInterval, 10 * time.Second}, {&opts.SweepInterval, 5 * time.Second},
		{&opts.NotifyTimeout, 2 * time.Minute},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	b := &Broker{
		st: st, audit: auditLog, notifiers: notifiers, clock: clock, log: logger, opts: opts,
		bindKey: opts.BindKey, stop: make(chan struct{}),
		waits: map[string]*wait{}, held: map[string]struct{}{},
		notifSem: make(chan struct{}, maxConcurrentNotifications),
	}
	if b.bindKey == nil {
		b.bindKey = make([]byte, 32)
		if _, err := rand.Read(b.bindKey); err != nil {
			return nil, fmt.Errorf("approval: bind key: %w", err)
		}
	}
	b.watcher, _ = st.(store.ApprovalWatcher)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.abandon(context.Background()); err != nil {
		b.cancel()
		return nil, err
	}
	b.wg.Add(1)
	go b.loop()
	if b.watcher != nil {
		b.wg.Add(1)
		go b.watch()
	}
	return b, nil
}

// Logger is the broker's logger, for the API that serves it.
func (b *Broker) Logger() *slog.Logger { return b.log }

// ReplicaID is the id this broker records as Holder.
func (b *Broker) ReplicaID() string { return b.opts.ReplicaID }

// Bind is the package's Bind under the broker's key.
func (b *Broker) Bind(statement string, params [][]byte) string {
	return Bind(b.bindKey, statement, params)
}

// abandon withdraws the requests this replica held when it last stopped
// without Shutdown: no client waits for them any more, and a reviewer
// should not spend a decision on them.
func (b *Broker) abandon(ctx context.Context) error {
	rows, err := b.st.Approvals(ctx, store.ApprovalQuery{Status: string(Pending), Holder: b.opts.ReplicaID, Limit: -1})
	if err != nil {
		return fmt.Errorf("approval: find abandoned requests: %w", err)
	}
	for _, row := range rows {
		reason := "abandoned: gateway replica " + b.opts.ReplicaID + " restarted before a decision"
		if _, err := b.withdraw(ctx, row.ID, nil, reason); err != nil && !errors.Is(err, ErrNotPending) {
			return fmt.Errorf("approval: withdraw abandoned request %s: %w", row.ID, err)
		}
		b.log.Info("approval request abandoned by a restart", "id", row.ID, "replica", b.opts.ReplicaID)
	}
	return nil
}

// Request validates r, records and stores it as a new pending request held
// by this replica, starts the notifiers and returns it. The caller fills
// Principal, Connection, Role, SessionID, Statement (masked), ParamHash,
// Rule, Reviewers and optionally Kind, Required, Expires, GrantDuration; the
// broker sets ID, Status, Created, Holder and clears decisions. The request
// is durable and audited when Request returns; if either fails it returns
// an error and the statement must be refused.
func (b *Broker) Request(ctx context.Context, r Request) (*Request, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.inflight.Add(1) // Shutdown waits, so it cannot miss this request
	b.mu.Unlock()
	defer b.inflight.Done()

	now := b.clock().UTC()
	if err := b.prepare(&r, now); err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, fmt.Errorf("approval: request id: %w", err)
	}
	r.ID = id
	row, err := r.row()
	if err != nil {
		return nil, err
	}
	// Recorded before it exists: a request nobody could find in the audit
	// trail must not be approvable.
	if err := b.record(ctx, audit.Event{
		Kind: audit.KindApprovalRequested, SessionID: r.SessionID, Principal: auditPrincipal(&r.Principal),
		Connection: r.Connection, Role: r.Role, Statement: r.Statement, Decision: "review", Rule: r.Rule,
		Extra: map[string]any{
			"approval_id": r.ID, "kind": r.Kind, "reviewers": r.Reviewers, "required": r.Required,
			"expires": r.Expires.Format(time.RFC3339Nano), "param_hash": r.ParamHash, "holder": r.Holder,
			"grant_duration": grantExtra(&r),
		},
	}); err != nil {
		return nil, err
	}
	if err := b.st.CreateApproval(ctx, row); err != nil {
		return nil, fmt.Errorf("approval: store request: %w", err)
	}
	r.version = 1
	b.mu.Lock()
	b.held[r.ID] = struct{}{}
	b.mu.Unlock()
	b.notify(&r)
	out := r
	return &out, nil
}

// prepare checks and completes a new request.
func (b *Broker) prepare(r *Request, now time.Time) error {
	if r.Kind == "" {
		r.Kind = KindStatement
	}
	switch {
	case r.Principal.Name == "":
		return errors.New("approval: request without a principal name")
	case r.Connection == "":
		return errors.New("approval: request without a connection")
	case r.Kind == KindStatement && r.Statement == "":
		return errors.New("approval: statement request without a statement")
	case r.Kind == KindSession && r.GrantDuration <= 0:
		return errors.New("approval: session request without a grant duration")
	case r.Kind != KindStatement && r.Kind != KindSession:
		return fmt.Errorf("approval: unknown request kind %q", r.Kind)
	case len(r.Reviewers) == 0 && len(b.opts.ApproverGroups) == 0:
		// Nobody could decide it; fail now rather than hold a client
		// until the timeout.
		return errors.New("approval: request without reviewers, and no approver groups are configured")
	case r.Required < 0:
		return fmt.Errorf("approval: required approvals %d is negative", r.Required)
	}
	if r.Required == 0 {
		r.Required = 1
	}
	if r.Expires.IsZero() {
		r.Expires = now.Add(b.opts.Timeout)
	}
	if !r.Expires.After(now) {
		return fmt.Errorf("approval: request expires at %s, which is not in the future", r.Expires.Format(time.RFC3339))
	}
	r.Status, r.Created, r.Expires, r.Holder = Pending, now, r.Expires.UTC(), b.opts.ReplicaID
	r.Principal = identity.Principal{Issuer: r.Principal.Issuer, Subject: r.Principal.Subject, Name: r.Principal.Name,
		Groups: slices.Clone(r.Principal.Groups)}
	r.Reviewers = slices.Clone(r.Reviewers)
	r.Approvals, r.Decided = nil, nil
	return nil
}

// Get returns request id, or ErrNotFound.
func (b *Broker) Get(ctx context.Context, id string) (*Request, error) {
	row, err := b.st.Approval(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	return fromRow(row)
}

// List returns the requests matching f, newest first.
func (b *Broker) List(ctx context.Context, f Filter) ([]Request, error) {
	rows, err := b.st.Approvals(ctx, store.ApprovalQuery{
		Status: string(f.Status), Principal: f.Principal, Connection: f.Connection, Limit: f.Limit,
	})
	if err != nil {
		return nil, fmt.Errorf("approval: list: %w", err)
	}
	out := make([]Request, 0, len(rows))
	for _, row := range rows {
		r, err := fromRow(row)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// Wait blocks until request id is no longer pending and returns it: approved,
// denied, expired (Wait expires it itself when its time comes) or withdrawn.
// A decision made on any replica sharing the store ends the wait. If ctx
// ends first Wait returns ctx.Err() and the request stays pending: the
// caller (whose client cancelled or went away) must then Withdraw it. After
// Shutdown it returns ErrClosed for requests still pending.
func (b *Broker) Wait(ctx context.Context, id string) (*Request, error) {
	b.mu.Lock()
	w := b.waits[id]
	if w == nil {
		w = &wait{ch: make(chan struct{})}
		b.waits[id] = w
	}
	w.n++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if w.n--; w.n == 0 {
			delete(b.waits, id)
		}
		b.mu.Unlock()
	}()
	for {
		// Take the channel before reading, so a change between the read
		// and the select still wakes us.
		b.mu.Lock()
		ch := w.ch
		b.mu.Unlock()
		r, err := b.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.Status != Pending {
			b.release(id)
			return r, nil
		}
		left := r.Expires.Sub(b.clock())
		if left <= 0 {
			if _, err := b.expire(ctx, id); err != nil && !errors.Is(err, ErrNotPending) {
				return nil, err
			}
			continue
		}
		t := time.NewTimer(left)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-b.stop:
			t.Stop()
			// Shutdown withdrew what this replica held; report that
			// rather than ErrClosed if it is what happened.
			if r, err := b.Get(ctx, id); err == nil && r.Status != Pending {
				return r, nil
			}
			return nil, ErrClosed
		}
		t.Stop()
	}
}

// Withdraw ends a pending request on the requester's behalf: the client
// cancelled or disconnected. ctx should not be the session's (which has
// ended by then): use context.WithoutCancel with a timeout. It returns
// ErrNotPending (wrapped) if the request was decided meanwhile.
func (b *Broker) Withdraw(ctx context.Context, id, reason string) error {
	r, err := b.Get(ctx, id)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "withdrawn by the client"
	}
	_, err = b.withdraw(ctx, id, &r.Principal, reason)
	return err
}

// withdraw ends request id on behalf of by: its requester, or nil for the
// gateway itself (shutdown, abandonment).
func (b *Broker) withdraw(ctx context.Context, id string, by *identity.Principal, reason string) (*Request, error) {
	return b.transition(ctx, id, false, func(r *Request, now time.Time) error {
		if r.Status != Pending {
			return notPending(r)
		}
		r.Status = Withdrawn
		r.Decided = &Decision{By: SystemDecider, Reason: reason, At: now}
		if by != nil {
			r.Decided.By, r.Decided.Issuer, r.Decided.Subject = by.Name, by.Issuer, by.Subject
		}
		return nil
	}, func(r *Request) audit.Event {
		return b.decidedEvent(r, by, "withdrawn", reason)
	})
}

// expire ends request id if it is pending and past its expiry.
func (b *Broker) expire(ctx context.Context, id string) (*Request, error) {
	return b.transition(ctx, id, false, func(r *Request, now time.Time) error {
		if r.Status != Pending {
			return notPending(r)
		}
		if now.Before(r.Expires) {
			return errNotDue
		}
		r.Status = Expired
		r.Decided = &Decision{By: SystemDecider, Reason: "expired", At: now}
		return nil
	}, func(r *Request) audit.Event {
		return b.decidedEvent(r, nil, "expired", "no decision before "+r.Expires.Format(time.RFC3339))
	})
}

var errNotDue = errors.New("approval: not expired yet")

// errExpiredPending marks a decision on a request past its expiry that no
// sweeper has expired yet.
var errExpiredPending = errors.New("approval: expired")

// Decide records by's decision on request id and returns the request as it
// stands after it. A denial ends the request at once; an approval ends it
// when Required distinct principals approved. Only members of the request's
// reviewer groups or the broker's approver groups decide, never the
// requester (ErrSelfApproval), and a denial needs a reason. The decision is
// recorded in the audit log before it is stored: if that fails nothing
// changes (ErrNotRecorded).
func (b *Broker) Decide(ctx context.Context, id string, by *identity.Principal, approve bool, reason string) (*Request, error) {
	if by == nil || by.Name == "" {
		return nil, ErrNotReviewer
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > maxReason {
		reason = truncate(reason, maxReason)
	}
	if b.opts.MaskReason != nil {
		reason = b.opts.MaskReason(reason)
	}
	if !approve && reason == "" {
		return nil, ErrReasonRequired
	}
	// Two decisions on this replica take turns, so they never race each
	// other's audit record (see transition); replicas still race through
	// the store's compare-and-swap.
	b.decideMu.Lock()
	defer b.decideMu.Unlock()
	verb := "deny"
	if approve {
		verb = "approve"
	}
	r, err := b.transition(ctx, id, true, func(r *Request, now time.Time) error {
		if r.Status != Pending {
			return notPending(r)
		}
		if !now.Before(r.Expires) {
			return errExpiredPending
		}
		if isSelf(by, &r.Principal) {
			return ErrSelfApproval
		}
		if !b.MayDecide(by, r) {
			return ErrNotReviewer
		}
		if approve {
			for _, d := range r.Approvals {
				if d.Approve && sameDecider(d, by) {
					return ErrAlreadyApproved
				}
			}
		}
		d := Decision{By: by.Name, Issuer: by.Issuer, Subject: by.Subject, Groups: slices.Clone(by.Groups),
			Approve: approve, Reason: reason, At: now}
		r.Approvals = append(r.Approvals, d)
		switch {
		case !approve:
			r.Status, r.Decided = Denied, &d
		case approvers(r) >= r.Required:
			r.Status, r.Decided = Approved, &d
		}
		return nil
	}, func(r *Request) audit.Event {
		return b.decidedEvent(r, by, verb, reason)
	})
	if errors.Is(err, errExpiredPending) {
		if _, err := b.expire(ctx, id); err != nil && !errors.Is(err, ErrNotPending) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: it expired", ErrNotPending)
	}
	return r, err
}

// MayDecide reports whether p is in one of r's reviewer groups or the
// broker's approver groups. It does not check self-approval.
func (b *Broker) MayDecide(p *identity.Principal, r *Request) bool {
	for _, g := range p.Groups {
		if slices.Contains(r.Reviewers, g) || slices.Contains(b.opts.ApproverGroups, g) {
			return true
		}
	}
	return false
}

// isSelf reports whether by is the requester: the same verified identity
// (issuer and subject), or the same name, since names are what reviewers and
// audit readers go by and two identities sharing one is already a
// configuration mistake not to lean on.
func isSelf(by, requester *identity.Principal) bool {
	if by.Subject != "" && by.Issuer == requester.Issuer && by.Subject == requester.Subject {
		return true
	}
	return strings.EqualFold(by.Name, requester.Name)
}

func sameDecider(d Decision, p *identity.Principal) bool {
	if d.Subject != "" && d.Issuer == p.Issuer && d.Subject == p.Subject {
		return true
	}
	return strings.EqualFold(d.By, p.Name)
}

// approvers counts the distinct principals that approved r.
func approvers(r *Request) int {
	n := 0
	for i, d := range r.Approvals {
		if !d.Approve {
			continue
		}
		dup := false
		for _, e := range r.Approvals[:i] {
			if e.Approve && (strings.EqualFold(e.By, d.By) || (d.Subject != "" && e.Issuer == d.Issuer && e.Subject == d.Subject)) {
				dup = true
				break
			}
		}
		if !dup {
			n++
		}
	}
	return n
}

func notPending(r *Request) error {
	return fmt.Errorf("%w: it is %s", ErrNotPending, r.Status)
}

// transition reads request id, lets apply change it, and stores the change
// if nobody else changed the request meanwhile; otherwise it reads again
// and re-applies, so apply sees every concurrent decision.
//
// auditFirst records the event before storing: for changes that may
// release a statement, so that nothing runs on an unrecorded decision. If
// the store then refuses the stale write, a "superseded" event follows so
// the trail says that decision did not take effect as recorded, and the
// decision is re-applied to the fresh request. Otherwise (changes that only
// refuse) the event is recorded after the store write, by whichever replica
// won, so racing sweepers record one expiry once; a failure to record is
// logged, and the change stands because it is the safe direction.
func (b *Broker) transition(ctx context.Context, id string, auditFirst bool,
	apply func(r *Request, now time.Time) error, event func(r *Request) audit.Event) (*Request, error) {
	const attempts = 10
	for range attempts {
		r, err := b.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := apply(r, b.clock().UTC()); err != nil {
			return nil, err
		}
		row, err := r.row()
		if err != nil {
			return nil, err
		}
		ev := event(r)
		if auditFirst {
			if err := b.record(ctx, ev); err != nil {
				return nil, err
			}
		}
		err = b.st.UpdateApproval(ctx, row)
		if errors.Is(err, store.ErrChanged) {
			if auditFirst {
				b.recordSuperseded(ctx, r)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("approval: store decision: %w", err)
		}
		r.version++
		if !auditFirst {
			if err := b.record(ctx, ev); err != nil {
				b.log.Error("approval: change stored but not recorded in the audit log",
					"id", id, "status", r.Status, "err", err)
			}
		}
		if r.Status != Pending {
			b.release(id)
		}
		b.signal(id)
		return r, nil
	}
	return nil, fmt.Errorf("approval: request %s kept changing; gave up after %d attempts", id, attempts)
}

func (b *Broker) recordSuperseded(ctx context.Context, r *Request) {
	ev := audit.Event{
		Kind: audit.KindApprovalDecided, SessionID: r.SessionID, Connection: r.Connection, Role: r.Role,
		Rule: r.Rule, Decision: "superseded",
		Reason: "the decision recorded just before did not take effect: the request changed concurrently",
		Extra:  map[string]any{"approval_id": r.ID},
	}
	if err := b.record(ctx, ev); err != nil {
		b.log.Error("approval: superseded decision not recorded", "id", r.ID, "err", err)
	}
}

// decidedEvent is the approval.decided record of r's new state. by is nil
// for the system's transitions.
func (b *Broker) decidedEvent(r *Request, by *identity.Principal, decision, reason string) audit.Event {
	ev := audit.Event{
		Kind: audit.KindApprovalDecided, SessionID: r.SessionID, Connection: r.Connection, Role: r.Role,
		Rule: r.Rule, Decision: decision, Reason: reason,
		Extra: map[string]any{
			"approval_id": r.ID, "status": string(r.Status), "requester": r.Principal.Name,
			"approvals": approvers(r), "required": r.Required, "param_hash": r.ParamHash,
		},
	}
	if by != nil {
		ev.Principal = auditPrincipal(by)
	} else {
		ev.Extra["by"] = SystemDecider
	}
	return ev
}

func (b *Broker) record(ctx context.Context, ev audit.Event) error {
	if b.audit == nil {
		return nil
	}
	if _, err := b.audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return nil
}

func auditPrincipal(p *identity.Principal) *audit.Principal {
	return &audit.Principal{Issuer: p.Issuer, Subject: p.Subject, Name: p.Name, Groups: slices.Clone(p.Groups)}
}

func grantExtra(r *Request) any {
	if r.Kind != KindSession {
		return nil
	}
	return r.GrantDuration.String()
}

// signal wakes the waiters of request id, if any, to re-read it.
func (b *Broker) signal(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.signalLocked(id)
}

func (b *Broker) signalLocked(id string) {
	if w := b.waits[id]; w != nil {
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// release forgets a request this broker held once it is decided.
func (b *Broker) release(id string) {
	b.mu.Lock()
	delete(b.held, id)
	b.mu.Unlock()
}

// waited returns the ids someone Waits for.
func (b *Broker) waited() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]string, 0, len(b.waits))
	for id := range b.waits {
		ids = append(ids, id)
	}
	return ids
}

// loop polls waited-for requests and sweeps expired ones until Shutdown.
func (b *Broker) loop() {
	defer b.wg.Done()
	tick := time.NewTicker(b.opts.PollInterval)
	defer tick.Stop()
	var lastPoll, lastSweep time.Time
	for {
		select {
		case <-b.stop:
			return
		case now := <-tick.C:
			interval := b.opts.PollInterval
			if b.watching.Load() {
				interval = b.opts.SafetyPollInterval
			}
			if now.Sub(lastPoll) >= interval {
				lastPoll = now
				b.poll()
			}
			if now.Sub(lastSweep) >= b.opts.SweepInterval {
				lastSweep = now
				b.sweep()
			}
		}
	}
}

// poll wakes the waiters of requests that are no longer pending.
func (b *Broker) poll() {
	ids := b.waited()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	rows, err := b.st.Approvals(ctx, store.ApprovalQuery{IDs: ids, Limit: -1})
	if err != nil {
		b.log.Warn("approval: poll failed", "err", err)
		return
	}
	found := make(map[string]bool, len(rows))
	for _, row := range rows {
		found[row.ID] = true
		if row.Status != string(Pending) {
			b.signal(row.ID)
		}
	}
	for _, id := range ids {
		if !found[id] {
			b.signal(id) // gone: the waiter reports ErrNotFound
		}
	}
}

// sweep expires pending requests past their expiry, whoever holds them,
// so that a request whose replica died does not stay pending forever.
func (b *Broker) sweep() {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	rows, err := b.st.Approvals(ctx, store.ApprovalQuery{Status: string(Pending), ExpiresBy: b.clock(), Limit: 100})
	if err != nil {
		b.log.Warn("approval: sweep failed", "err", err)
		return
	}
	for _, row := range rows {
		if _, err := b.expire(ctx, row.ID); err != nil && !errors.Is(err, ErrNotPending) && !errors.Is(err, errNotDue) {
			b.log.Warn("approval: expiry failed", "id", row.ID, "err", err)
		}
	}
}

// watch follows the store's change feed until Shutdown, reconnecting with
// backoff; after each (re)connect it wakes every waiter, since changes made
// while it was down were not delivered.
func (b *Broker) watch() {
	defer b.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		err := b.watcher.WatchApprovals(b.ctx, func() {
			b.watching.Store(true)
			backoff = 100 * time.Millisecond
			b.mu.Lock()
			for id := range b.waits {
				b.signalLocked(id)
			}
			b.mu.Unlock()
		}, b.signal)
		b.watching.Store(false)
		if b.ctx.Err() != nil {
			return
		}
		b.log.Warn("approval: change feed lost; polling until it is back", "err", err, "retry_in", backoff)
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// notify runs every notifier for r on its own goroutine.
func (b *Broker) notify(r *Request) {
	for _, n := range b.notifiers {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			select {
			case b.notifSem <- struct{}{}:
				defer func() { <-b.notifSem }()
			case <-b.ctx.Done():
				return
			}
			ctx, cancel := context.WithTimeout(b.ctx, b.opts.NotifyTimeout)
			defer cancel()
			c := *r
			if err := n.Notify(ctx, &c); err != nil {
				// The request stands: reviewers can still find it with
				// `gatehouse approvals list`.
				b.log.Error("approval: notification failed", "notifier", n.Name(), "id", r.ID, "err", err)
				return
			}
			b.log.Debug("approval: reviewers notified", "notifier", n.Name(), "id", r.ID)
		}()
	}
}

// Shutdown refuses new requests, withdraws the pending requests this
// replica holds (their clients are about to lose their connections),
// releases every Wait, stops notifications and the background loops, and
// waits for them or for ctx. The store stays open: the caller closes it
// after.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.inflight.Wait()
		b.mu.Lock()
		held := make([]string, 0, len(b.held))
		for id := range b.held {
			held = append(held, id)
		}
		b.mu.Unlock()
		for _, id := range held {
			if _, err := b.withdraw(ctx, id, nil, "the gateway shut down before a decision"); err != nil && !errors.Is(err, ErrNotPending) {
				b.log.Warn("approval: withdraw on shutdown failed; the request will expire", "id", id, "err", err)
			}
		}
		close(b.stop)
		b.cancel()
		done := make(chan struct{})
		go func() {
			b.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			b.shutErr = fmt.Errorf("approval: shutdown: %w", ctx.Err())
		}
	})
	return b.shutErr
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
