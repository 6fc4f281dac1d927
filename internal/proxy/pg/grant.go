package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Session grants: a review rule that matches at connect time (rules see an
// empty stmt, stmt.command == "") holds the session until a reviewer
// approves it; the approval lasts the rule's grant, after which the session
// ends and a new one needs a new approval. A deny rule that matches at
// connect time refuses the session. The connection's default action does
// not apply at connect time: it is for statements.

// admit applies connect-time policy to sess. It may hold the session for
// approval (answering AuthenticationOk first, since libpq reads notices only
// after it) and then reports authOKSent.
func (s *Server) admit(ctx context.Context, st *startup, sess *Session) (authOKSent bool, err error) {
	in := s.opts.Inspection
	if in == nil || in.Analyzer == nil {
		return false, nil
	}
	dec := in.Policies[sess.Connection.Name].Evaluate(policy.Input{
		Principal: sess.Principal, Connection: sess.Connection.Name, Role: sess.Role.Name,
		Session: policy.SessionInfo{ID: sess.ID, ClientAddr: sess.ClientAddr},
	})
	if dec.Rule == policy.RuleDefault || dec.Action == policy.Allow {
		return false, nil
	}
	if dec.Action == policy.Deny || s.opts.Approvals == nil {
		sess.log.Warn("session refused at connect", "rule", dec.Rule)
		s.auditAuth(ctx, st, sess.Principal, sess.Connection.Name, sess.Role.Name, "failure", "session denied by rule "+dec.Rule)
		return false, fatal(codeInvalidAuthorization, fmt.Sprintf("gatehouse: session denied by rule %q: %s", dec.Rule, dec.Message), dec.Hint)
	}
	ap := s.opts.Approvals
	req, err := ap.Request(ctx, approval.Request{
		Kind: approval.KindSession, Principal: *sess.Principal,
		Connection: sess.Connection.Name, Role: sess.Role.Name, SessionID: sess.ID,
		Statement:     fmt.Sprintf("<session as %s on %s from %s>", sess.Role.Name, sess.Connection.Name, sess.ClientAddr),
		Rule:          dec.Rule,
		Reviewers:     dec.Reviewers,
		Required:      in.Required[dec.Rule],
		GrantDuration: in.Grants[dec.Rule],
	})
	if err != nil {
		sess.log.Error("session approval request failed", "err", err)
		return false, fatal(codeInvalidAuthorization, "gatehouse: the session needs approval, but the request could not be created", "retry later")
	}
	msg, detail := approval.HeldNotice(req)
	st.backend.Send(&pgproto3.AuthenticationOk{})
	st.backend.Send(&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "01000", Message: "gatehouse: session " + msg, Detail: detail})
	if err := st.backend.Flush(); err != nil {
		s.withdraw(ctx, req.ID, "the client went away")
		return true, errClientGone
	}
	sess.log.Info("session held for approval", "request", req.ID, "rule", dec.Rule)

	// No startup deadline while a human decides; watch for the client
	// leaving (it sends nothing before ReadyForQuery).
	_ = st.conn.SetDeadline(time.Time{})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		var b [1]byte
		if _, err := st.conn.Read(b[:]); err != nil && !isTimeout(err) {
			cancel()
		}
	}()
	res, err := ap.Wait(wctx, req.ID)
	_ = st.conn.SetReadDeadline(time.Now())
	<-watchDone
	_ = st.conn.SetDeadline(s.opts.Now().Add(s.listener.StartupTimeout))
	if err != nil {
		s.withdraw(ctx, req.ID, "the client went away")
		return true, errClientGone
	}
	if res.Status != approval.Approved {
		why, _ := approval.Refusal(res)
		return true, fatal(codeInvalidAuthorization, "gatehouse: session not approved: "+why, "")
	}
	sess.grantUntil = res.GrantedUntil()
	sess.log.Info("session approved", "request", req.ID, "until", sess.grantUntil)
	return true, nil
}

func (s *Server) withdraw(ctx context.Context, id, reason string) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.opts.Approvals.Withdraw(wctx, id, reason); err != nil && !errors.Is(err, approval.ErrNotPending) {
		s.log.Warn("withdrawing an approval request failed", "request", id, "err", err)
	}
}

// endAtGrant ends the session when its grant runs out; the returned stop
// function cancels that when the session ends first.
func (s *Session) endAtGrant() (stop func() bool) {
	if s.grantUntil.IsZero() {
		return func() bool { return false }
	}
	t := time.AfterFunc(time.Until(s.grantUntil), func() {
		s.log.Info("session grant expired")
		s.terminate(fatal(codeAdminShutdown, "terminating connection: the session's approval has expired", "connect again to ask for a new approval"))
	})
	return t.Stop
}
