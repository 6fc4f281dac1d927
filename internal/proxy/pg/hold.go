package pg

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Holding a statement for approval. A review decision holds the statement
// where it would run: a simple Query at once, an extended-protocol
// statement at its Execute (so the approval covers its parameters too: the
// request's ParamHash binds both). While held the client→target direction
// waits; the target→client direction keeps relaying, so the connection
// stays healthy and other sessions are never blocked. The client learns the
// request id from a NoticeResponse. The exact bytes held are what runs on
// approval; nothing else can be slipped in under it.

// codeQueryCanceled is what a client that cancels a held statement gets,
// as PostgreSQL answers a cancelled statement.
const codeQueryCanceled = "57014"

// reviewWait is a statement held for review.
type reviewWait struct {
	cancel context.CancelFunc
	mu     sync.Mutex // guards canceled
	// canceled is set when a CancelRequest named this session.
	canceled bool
}

// cancelHold ends a hold because the client sent a CancelRequest; it
// reports whether a statement was held.
func (s *Session) cancelHold() bool {
	h := s.held.Load()
	if h == nil {
		return false
	}
	h.mu.Lock()
	h.canceled = true
	h.mu.Unlock()
	h.cancel()
	return true
}

// review holds msg (a framed Query or Execute) for the decision d says it
// needs. It returns nil when the statement was approved and may be
// forwarded as held, or the denial to answer with instead. gone reports
// that the client disconnected while waiting.
func (s *Session) review(ctx context.Context, r *msgReader, d *denial, statement string, params [][]byte) (refusal *denial, gone bool) {
	ap := s.server.opts.Approvals
	req, err := ap.Request(ctx, approval.Request{
		Kind:       approval.KindStatement,
		Principal:  *s.Principal,
		Connection: s.Connection.Name,
		Role:       s.Role.Name,
		SessionID:  s.ID,
		Statement:  s.maskText(statement),
		ParamHash:  ap.Bind(statement, params),
		Rule:       d.rule,
		Reviewers:  d.reviewers,
		Required:   s.server.opts.Inspection.Required[d.rule],
	})
	if err != nil {
		s.log.Error("approval request failed; refusing the statement", "rule", d.rule, "err", err)
		d.message = "the statement needs approval, but the approval request could not be created"
		return d, false
	}
	s.log.Info("statement held for approval", "request", req.ID, "rule", d.rule)
	msg, detail := approval.HeldNotice(req)
	s.notice("gatehouse: "+msg, detail)

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &reviewWait{cancel: cancel}
	s.held.Store(h)
	defer s.held.Store(nil)

	// Watch the client while waiting: a disconnect withdraws the request.
	// The reader's previous message is fully consumed, so peeking sees
	// only what the client sends next (which stays buffered for later).
	goneCh := make(chan struct{})
	peekDone := make(chan struct{})
	go func() {
		defer close(peekDone)
		if err := r.waitReadable(); err != nil && !isTimeout(err) {
			close(goneCh)
			cancel()
		}
	}()
	res, err := ap.Wait(hctx, req.ID)
	// Stop the watcher before the relay reads again.
	_ = s.client.SetReadDeadline(time.Now())
	<-peekDone
	_ = s.client.SetReadDeadline(time.Time{})

	if err != nil {
		h.mu.Lock()
		canceled := h.canceled
		h.mu.Unlock()
		reason := "the client went away"
		if canceled {
			reason = "the client cancelled the statement"
		}
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if werr := ap.Withdraw(wctx, req.ID, reason); werr != nil && !errors.Is(werr, approval.ErrNotPending) {
			s.log.Warn("withdrawing the approval request failed", "request", req.ID, "err", werr)
		}
		wcancel()
		select {
		case <-goneCh:
			return nil, true
		default:
		}
		if canceled {
			return &denial{rule: d.rule, code: codeQueryCanceled, message: "canceling statement due to user request"}, false
		}
		return &denial{rule: d.rule, message: "the approval could not be awaited: " + err.Error()}, false
	}
	if res.Status == approval.Approved {
		s.log.Info("statement approved", "request", req.ID)
		return nil, false
	}
	s.log.Info("statement not approved", "request", req.ID, "status", string(res.Status))
	why, whyDetail := approval.Refusal(res)
	return &denial{rule: d.rule, message: why, detail: whyDetail, decided: true}, false
}

// notice sends the client a NoticeResponse now, between whatever the
// target→client direction is relaying.
func (s *Session) notice(msg, detail string) {
	b, err := (&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000", Message: msg, Detail: detail}).Encode(nil)
	if err != nil {
		return
	}
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	if s.cw == nil {
		return
	}
	_, _ = s.cw.Write(b)
	_ = s.cw.Flush()
}
