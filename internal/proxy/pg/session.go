package pg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/mask"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/record"
	sqlpg "github.com/gatehouse/gatehouse/internal/sql/pg"
	"github.com/prometheus/client_golang/prometheus"
)

// Buffer sizes of the relay. Reads are buffered so that one syscall brings
// many small messages; writes are flushed only when the reader has nothing
// more buffered, which coalesces a pipeline into few writes.
const (
	readBufSize  = 32 << 10
	writeBufSize = 32 << 10
)

// Session is one client connection relayed to one target connection.
type Session struct {
	ID         string
	Principal  *identity.Principal
	Connection *config.Connection
	Role       *config.Role
	ClientAddr string
	Start      time.Time

	// auditPrin is Principal as audit events carry it, built once and
	// shared by the session's events, which never modify it.
	auditPrin    *audit.Principal
	server       *Server
	client       net.Conn
	target       *target
	protocol     uint32
	clientPID    uint32
	clientSecret []byte
	log          *slog.Logger

	bytesIn, bytesOut atomic.Int64
	// inFlight counts Query, Sync and FunctionCall messages sent to the
	// target whose ReadyForQuery has not come back: a session waiting on
	// its target is busy, not idle.
	inFlight   atomic.Int32
	killReason atomic.Pointer[pgError]
	closeOnce  sync.Once

	track     tracker
	sentinels *sentinels
	// columns are the column masking rules resolved on this target.
	columns map[colKey]mask.Strategy
	// prepared maps SQL-level and protocol-level prepared statement names
	// to their facts; only the client→target direction touches it.
	prepared *sqlpg.PreparedSet
	// decisions remembers policy decisions on statements this session ran
	// (touched only by the client→target goroutine, as prepared is).
	decisions policy.Memo
	// grantUntil ends a session whose connect-time approval runs out.
	grantUntil time.Time
	// latency is the connection's statement latency histogram.
	latency prometheus.Observer
	// judged holds the connection's statements counter for each decision,
	// looked up on the decision's first statement (see countStatement).
	// Only the client-to-target goroutine judges, so it needs no lock.
	judged [policy.Deny + 1]prometheus.Counter
	// facts is auditStatement's scratch for a statement event's facts,
	// which the log re-encodes and does not keep (audit.Log.Append). Only
	// the client-to-target goroutine audits statements.
	facts []byte
	// txStatus is the last ReadyForQuery status ('I', 'T' or 'E').
	txStatus atomic.Uint32
	tls      bool
	// rec records the session; nil when recording is off. recVals is the
	// target→client direction's scratch for splitting rows; recNames are
	// the column names of the last RowDescription recorded, recDesc its
	// body, for a query run again.
	rec      *record.Recorder
	recVals  [][]byte
	recNames []string
	recDesc  []byte

	// held is the statement waiting for approval, if any.
	held atomic.Pointer[reviewWait]
	// cw writes to the client. The target→client direction owns it; a
	// notice from the other direction (a held statement) takes cwMu too.
	cwMu sync.Mutex
	cw   *bufio.Writer
}

// run relays until either side ends, then closes both.
func (s *Session) run(ctx context.Context) {
	srv := s.server
	m := srv.opts.Metrics
	s.latency = m.StatementLatency.WithLabelValues(s.Connection.Name)
	stopGrant := s.endAtGrant()
	defer stopGrant()
	m.SessionsActive.WithLabelValues(s.Connection.Name).Inc()
	m.SessionsTotal.WithLabelValues(s.Connection.Name).Inc()
	s.log.Info("session started", "principal_groups", s.Principal.Groups, "target_user", s.Role.User)
	if srv.opts.Audit != nil {
		ev := s.event(audit.KindSessionStart)
		ev.Extra = map[string]any{"target_user": s.Role.User, "tls": s.tls}
		// Queued, not waited for: it rides the commit of the session's
		// first statement event, which must be durable before that
		// statement is forwarded, and the log is written in order, so this
		// event is on disk before anything the session does reaches the
		// target. Waiting cost every session a flush (an fdatasync)
		// before its first query could be read. The
		// auth.success event before it was durable, so a broken log has
		// already refused the session; a log that breaks now refuses the
		// first statement.
		if !srv.appendAuditAfter(ev) {
			s.terminate(fatal(codeIOError, "gatehouse cannot write its audit log; the session was not started", "gatehouse fails closed when its audit log is unavailable; retry later"))
		}
	}
	if err := s.startRecording(ctx); err != nil {
		s.recordingFailed(err)
	}

	var wg sync.WaitGroup
	var clientErr, targetErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		clientErr = s.clientToTarget(ctx)
		s.closeBoth()
	}()
	go func() {
		defer wg.Done()
		targetErr = s.targetToClient()
		s.closeBoth()
	}()
	wg.Wait()

	srv.unregister(s)
	m.SessionsActive.WithLabelValues(s.Connection.Name).Dec()
	in, out := s.bytesIn.Load(), s.bytesOut.Load()
	m.Bytes.WithLabelValues(s.Connection.Name, "client_to_target").Add(float64(in))
	m.Bytes.WithLabelValues(s.Connection.Name, "target_to_client").Add(float64(out))
	attrs := []any{
		"bytes_client_to_target", in,
		"bytes_target_to_client", out,
		"duration_ms", srv.opts.Now().Sub(s.Start).Milliseconds(),
	}
	if r := s.killReason.Load(); r != nil {
		attrs = append(attrs, "reason", r.Message)
	}
	if clientErr != nil && !isClosedErr(clientErr) {
		attrs = append(attrs, "client_err", clientErr.Error())
	}
	if targetErr != nil && !isClosedErr(targetErr) {
		attrs = append(attrs, "target_err", targetErr.Error())
		m.TargetErrors.WithLabelValues(s.Connection.Name, "relay").Inc()
	}
	s.log.Info("session ended", attrs...)
	if srv.opts.Audit != nil {
		ev := s.event(audit.KindSessionEnd)
		ev.Extra = map[string]any{"bytes_client_to_target": in, "bytes_target_to_client": out, "duration_ms": srv.opts.Now().Sub(s.Start).Milliseconds()}
		if s.rec != nil {
			// The chunk hashes go into the tamper-evident log.
			sum, rerr := s.rec.Close(context.WithoutCancel(ctx))
			ev.Extra[record.AuditExtraKey] = sum.AuditExtra()
			if rerr != nil {
				ev.Extra["recording_error"] = rerr.Error()
			}
		}
		if r := s.killReason.Load(); r != nil {
			ev.Reason = r.Message
		}
		srv.appendAudit(context.WithoutCancel(ctx), ev)
	}
}

// closeBoth ends the session: the first direction to finish closes both
// connections, which ends the other.
func (s *Session) closeBoth() {
	s.closeOnce.Do(func() {
		s.client.Close()
		s.target.conn.Close()
	})
}

// terminate ends the session from outside (shutdown, idle timeout): reason
// is sent to the client by the target→client direction, which owns the
// client writer, once closing the target unblocks it.
func (s *Session) terminate(reason *pgError) {
	if s.killReason.CompareAndSwap(nil, reason) {
		s.target.conn.Close()
	}
}

// clientToTarget relays client messages to the target, judging every
// statement on the way.
func (s *Session) clientToTarget(ctx context.Context) error {
	lim := s.server.listener
	r := newMsgReader(s.client, readBufSize, lim.MaxMessageBytes)
	w := bufio.NewWriterSize(s.target.conn, writeBufSize)
	idle := lim.IdleTimeout
	portals := map[string]portalInfo{}
	stmtIDs := map[string]uint64{} // prepared statement name → audited statement
	reviews := map[string]reviewInfo{}
	var out []byte // rewritten messages
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
			_ = s.client.SetReadDeadline(time.Now().Add(idle))
		}
		typ, body, raw, err := r.Next()
		if err != nil {
			if isTimeout(err) && s.killReason.Load() == nil {
				// The deadline is set before every read that would block, so
				// it fires only after the client sent nothing for the whole
				// idle timeout. A client waiting on its target (a long
				// query, a held statement) is not idle. No per-message clock
				// read: one cost ~4% of the relay's CPU.
				if s.inFlight.Load() > 0 {
					continue
				}
				s.log.Info("idle timeout", "idle_timeout", idle.String())
				s.terminate(fatal(codeIdleSessionTimeout, "terminating connection due to idle-session timeout", "gatehouse closes sessions idle longer than listeners.postgres.idle_timeout"))
				return nil
			}
			if errors.Is(err, ErrMessageTooLarge) {
				s.log.Warn("client message too large", "err", err)
				s.terminate(&pgError{Severity: "FATAL", Code: codeProtocolViolation, Message: "message too large", Detail: err.Error(), Hint: "gatehouse's listeners.postgres.max_message_bytes caps client messages"})
				return err
			}
			return err
		}
		s.bytesIn.Add(int64(len(body) + 5))

		switch typ {
		case 'X':
			// Terminate: pass it on so the target ends cleanly, then stop.
			_ = writeMsg(w, typ, body, raw)
			_ = w.Flush()
			return nil
		case 'Q':
			sql, _, ok := cstring(body)
			if !ok {
				return s.protocolError("malformed Query message")
			}
			s.inFlight.Add(1)
			if !s.recordClient("query", s.maskText(string(sql)), nil) {
				return nil
			}
			d, id := s.judge(ctx, string(sql), nil)
			if d != nil && d.review && s.server.opts.Approvals != nil {
				if err := w.Flush(); err != nil {
					return err
				}
				held := append([]byte(nil), frameOf(typ, body, raw)...)
				refusal, gone := s.review(ctx, r, d, string(sql), nil)
				if gone {
					return nil
				}
				if refusal == nil {
					s.track.push(item{start: time.Now(), kind: itemQuery, stmtID: id})
					if _, err := w.Write(held); err != nil {
						return err
					}
					continue
				}
				d = refusal
			}
			if d != nil {
				var q string
				d.marker, q = s.sentinels.next()
				out = appendQuery(out[:0], q)
				s.track.push(item{start: time.Now(), kind: itemQuery, denial: d, stmtID: id})
				if _, err := w.Write(out); err != nil {
					return err
				}
				continue
			}
			s.track.push(item{start: time.Now(), kind: itemQuery, stmtID: id})
		case 'P':
			name, rest, ok := cstring(body)
			var sql []byte
			if ok {
				sql, _, ok = cstring(rest)
			}
			if !ok {
				return s.protocolError("malformed Parse message")
			}
			stmtName := string(name)
			if !s.recordClient("parse", s.maskText(string(sql)), nil) {
				return nil
			}
			d, id := s.judge(ctx, string(sql), &stmtName)
			if d != nil && d.review && s.server.opts.Approvals != nil {
				// Parsing runs nothing: the statement is held at its
				// Execute, where its parameters are known.
				reviews[stmtName] = reviewInfo{d: d, sql: string(sql)}
				stmtIDs[stmtName] = id
				s.track.push(item{kind: itemParse, name: stmtName})
				break
			}
			delete(reviews, stmtName)
			if d != nil {
				var q string
				d.marker, q = s.sentinels.next()
				out = appendParse(out[:0], string(name), q)
				s.track.push(item{kind: itemParse, name: string(name), denial: d, stmtID: id})
				delete(stmtIDs, string(name))
				if _, err := w.Write(out); err != nil {
					return err
				}
				continue
			}
			s.track.push(item{kind: itemParse, name: string(name)})
			stmtIDs[string(name)] = id
		case 'B':
			bd, ok := parseBind(body)
			if !ok {
				return s.protocolError("malformed Bind message")
			}
			pi := portalInfo{stmt: bd.stmt, formats: bd.formats, stmtID: stmtIDs[bd.stmt]}
			if rv, ok := reviews[bd.stmt]; ok {
				// The values outlive this message: the approval binds them.
				pi.review, pi.sql = rv.d, rv.sql
				for _, v := range bd.values {
					if v != nil {
						v = append([]byte(nil), v...)
					}
					pi.raw = append(pi.raw, v)
				}
			}
			if s.rec != nil || (pi.stmtID != 0 && s.server.opts.Audit != nil) {
				pi.params = s.maskedParams(&bd)
			}
			portals[bd.portal] = pi
			if s.rec != nil && !s.recordClient("bind", bd.stmt, pi.params) {
				return nil
			}
			s.track.push(item{kind: itemBind, name: bd.portal})
		case 'D':
			if len(body) < 2 {
				return s.protocolError("malformed Describe message")
			}
			name, _, _ := cstring(body[1:])
			kind := itemDescribeStmt
			if body[0] == 'P' {
				kind = itemDescribePortal
			}
			s.track.push(item{kind: kind, name: string(name)})
		case 'E':
			portal, _, ok := cstring(body)
			if !ok {
				return s.protocolError("malformed Execute message")
			}
			pi := portals[string(portal)]
			if pi.review != nil {
				if err := w.Flush(); err != nil {
					return err
				}
				held := append([]byte(nil), frameOf(typ, body, raw)...)
				refusal, gone := s.review(ctx, r, pi.review, pi.sql, pi.raw)
				if gone {
					return nil
				}
				if refusal != nil {
					// A Parse that fails in analysis stands in for the
					// Execute: the target answers with the error and skips
					// to Sync, as it would after a failed Execute.
					var q string
					refusal.marker, q = s.sentinels.next()
					out = appendParse(out[:0], "gatehouse_"+refusal.marker, q)
					s.track.push(item{start: time.Now(), kind: itemExecute, name: string(portal), stmt: pi.stmt, formats: pi.formats, stmtID: pi.stmtID, params: pi.params, denial: refusal})
					if _, err := w.Write(out); err != nil {
						return err
					}
					continue
				}
				s.track.push(item{start: time.Now(), kind: itemExecute, name: string(portal), stmt: pi.stmt, formats: pi.formats, stmtID: pi.stmtID, params: pi.params})
				if _, err := w.Write(held); err != nil {
					return err
				}
				continue
			}
			s.track.push(item{start: time.Now(), kind: itemExecute, name: string(portal), stmt: pi.stmt, formats: pi.formats, stmtID: pi.stmtID, params: pi.params})
		case 'C':
			if len(body) < 2 {
				return s.protocolError("malformed Close message")
			}
			name, _, _ := cstring(body[1:])
			if body[0] == 'P' {
				delete(portals, string(name))
			} else {
				delete(stmtIDs, string(name))
				delete(reviews, string(name))
			}
			s.track.push(item{kind: itemClose, name: string(name), stmt: string(body[:1])})
		case 'S':
			s.inFlight.Add(1)
			s.track.push(item{kind: itemSync})
		case 'F':
			s.inFlight.Add(1)
			if d, id := s.judgeFunctionCall(ctx, body); d != nil {
				// A failed FunctionCall and a failed Query are answered the
				// same way (ErrorResponse, ReadyForQuery), so the sentinel
				// rides in a Query.
				var q string
				d.marker, q = s.sentinels.next()
				out = appendQuery(out[:0], q)
				s.track.push(item{kind: itemFunctionCall, denial: d, stmtID: id})
				if _, err := w.Write(out); err != nil {
					return err
				}
				continue
			}
			s.track.push(item{kind: itemFunctionCall})
		case 'd':
			if s.rec != nil && !s.recordClient("copy", s.maskText(string(body)), nil) {
				return nil
			}
		}
		if err := writeMsg(w, typ, body, raw); err != nil {
			return err
		}
	}
}

// protocolError ends the session on a malformed client message.
func (s *Session) protocolError(msg string) error {
	s.log.Warn("client protocol violation", "err", msg)
	s.terminate(&pgError{Severity: "FATAL", Code: codeProtocolViolation, Message: msg})
	return errors.New(msg)
}

// targetToClient relays target messages to the client, masking every value
// that leaves.
func (s *Session) targetToClient() error {
	r := newMsgReader(s.target.conn, readBufSize, 1<<30)
	w := bufio.NewWriterSize(s.client, writeBufSize)
	s.cwMu.Lock()
	s.cw = w
	s.cwMu.Unlock()
	rm := &rowMasker{m: s.server.opts.Masker}
	// Looked up once: by label on every masked row it took 4% of the CPU
	// of a large masked result.
	maskedValues := s.server.opts.Metrics.ValuesMasked.WithLabelValues(s.Connection.Name)
	var (
		stmtDesc   = map[string]*rowDesc{}
		portalDesc = map[string]*rowDesc{}
		current    *rowDesc // of the simple Query in progress
		// The last RowDescription parsed, by its body: a session running
		// the same query again gets the same one, and the description is
		// read-only once parsed (s.columns is fixed for the session).
		lastDescBody []byte
		lastDesc     *rowDesc
		copyBinary   bool
		errBuf       []byte
		// The last result of the simple Query in progress, for its outcome.
		queryTag, queryCode, queryMsg string
		// When the message being handled arrived: the time of the read that
		// completed it. Messages that came in one read share it, which
		// saves a clock reading per row of a large result.
		arrived time.Time
		// The request the rows in progress answer, looked up once per run
		// of DataRows rather than once per row: only this goroutine pops
		// requests, and a push does not change the front of a queue that
		// has one.
		rowsFor      item
		rowsForKnown bool
		// Counted here and published per read, not per message: each
		// update is an atomic operation, several per row otherwise.
		bytesOut int64
	)
	defer func() {
		s.bytesOut.Add(bytesOut)
		maskedValues.Add(float64(rm.masked))
	}()
	for {
		buffered := r.Buffered()
		if buffered == 0 {
			if rm.masked > 0 {
				maskedValues.Add(float64(rm.masked))
				rm.masked = 0
			}
			s.cwMu.Lock()
			err := w.Flush()
			s.cwMu.Unlock()
			if err != nil {
				return err
			}
		}
		typ, body, raw, err := r.Next()
		if len(body)+5 > buffered {
			arrived = time.Now()
		}
		if typ != 'D' {
			rowsForKnown = false
		}
		if err != nil {
			s.cwMu.Lock()
			defer s.cwMu.Unlock()
			if reason := s.killReason.Load(); reason != nil {
				_, _ = w.Write(reason.appendTo(nil))
				_ = w.Flush()
				return nil
			}
			_ = w.Flush()
			return err
		}
		bytesOut += int64(len(body) + 5)

		var mErr error
		out := body
		switch typ {
		case 'D':
			if rm.m == nil {
				break
			}
			if !rowsForKnown {
				rowsFor, rowsForKnown = s.track.front()
			}
			if it := rowsFor; it.kind == itemExecute {
				desc := portalDesc[it.name]
				if desc == nil {
					desc = stmtDesc[it.stmt]
				}
				out, mErr = rm.maskDataRow(body, desc, it.formats, true)
			} else {
				out, mErr = rm.maskDataRow(body, current, nil, false)
			}
		case 'T':
			rd := lastDesc
			if rd == nil || !bytes.Equal(body, lastDescBody) {
				var err error
				if rd, err = parseRowDesc(body, s.columns); err != nil {
					mErr = err
					break
				}
				lastDesc, lastDescBody = rd, append(lastDescBody[:0], body...)
			}
			it, _ := s.track.front()
			switch it.kind {
			case itemDescribeStmt:
				stmtDesc[it.name] = rd
				s.track.pop()
			case itemDescribePortal:
				portalDesc[it.name] = rd
				s.track.pop()
			default:
				current = rd
			}
		case 'n': // NoData answers a Describe
			if it, ok := s.track.front(); ok && (it.kind == itemDescribeStmt || it.kind == itemDescribePortal) {
				s.track.pop()
			}
		case '1': // ParseComplete: the statement's old description is void
			if it, ok := s.track.pop(); ok {
				delete(stmtDesc, it.name)
			}
		case '2': // BindComplete: likewise for the portal
			if it, ok := s.track.pop(); ok {
				delete(portalDesc, it.name)
			}
		case '3': // CloseComplete
			if it, ok := s.track.pop(); ok {
				if it.stmt == "S" {
					delete(stmtDesc, it.name)
				} else {
					delete(portalDesc, it.name)
				}
			}
		case 'C', 'I':
			tag, _, _ := cstring(body)
			if it, ok := s.track.front(); ok && it.kind == itemExecute {
				s.track.pop()
				s.observe(it)
				s.recordOutcome(outcome{stmtID: it.stmtID, tag: string(tag), params: it.params})
			} else if ok && it.kind == itemQuery && it.stmtID != 0 {
				queryTag = string(tag)
			}
		case 's': // PortalSuspended
			if it, ok := s.track.front(); ok && it.kind == itemExecute {
				s.track.pop()
			}
		case 'E':
			it, ok := s.track.front()
			if ok && it.denial != nil && isSentinelError(body, it.denial.marker) {
				errBuf = it.denial.errorFor().appendTo(errBuf[:0])
				out = errBuf[5:]
			}
			if rm.m != nil {
				// A denial is masked like the server's errors: its message
				// can quote the statement (a parse error's token).
				out, mErr = rm.maskFields(out)
			}
			if ok && it.stmtID != 0 && mErr == nil {
				code, msg := errorFields(out)
				if it.kind == itemQuery {
					queryCode, queryMsg = code, msg
				} else if it.kind != itemSync && it.kind != itemFunctionCall {
					s.recordOutcome(outcome{stmtID: it.stmtID, code: code, msg: msg, params: it.params})
				}
			}
			if ok {
				switch it.kind {
				case itemQuery, itemSync, itemFunctionCall:
					// These end at ReadyForQuery.
				default:
					// The target skips the rest of the extended-protocol
					// batch up to Sync.
					s.track.pop()
					s.track.skipToSync(nil)
				}
			}
		case 'Z':
			s.inFlight.Add(-1)
			it, ok := s.track.pop()
			if ok && it.kind == itemQuery {
				s.observe(it)
			}
			if ok && it.kind == itemQuery && it.stmtID != 0 {
				s.recordOutcome(outcome{stmtID: it.stmtID, tag: queryTag, code: queryCode, msg: queryMsg})
			}
			queryTag, queryCode, queryMsg = "", "", ""
			current = nil
			if len(body) == 1 {
				s.txStatus.Store(uint32(body[0]))
			}
			if len(body) == 1 && body[0] == 'I' {
				// Outside a transaction every portal is gone.
				clear(portalDesc)
			}
		case 'N':
			if rm.m != nil {
				out, mErr = rm.maskFields(body)
			}
		case 'A':
			if rm.m != nil {
				out, mErr = rm.maskNotification(body)
			}
		case 'H': // CopyOutResponse: overall format first
			copyBinary = len(body) > 0 && body[0] == 1
			if copyBinary && rm.m != nil {
				// Binary COPY carries numbers (a card number in a bigint or
				// numeric column) that cannot be masked in place, and no
				// column rule applies to COPY: refuse it (fail closed).
				mErr = fmt.Errorf("%w: binary COPY output cannot be masked; use COPY … TO STDOUT in text or CSV format", errUnmaskable)
			}
		case 'd':
			if rm.m != nil {
				out, mErr = rm.maskCopyData(body, copyBinary)
			}
		}
		if mErr != nil {
			s.cwMu.Lock()
			defer s.cwMu.Unlock()
			return s.maskFailure(w, mErr)
		}
		if s.rec != nil {
			var vals [][]byte // out's values, when masking split it
			if typ == 'D' && rm.m != nil {
				vals = rm.vals
			}
			if err := s.recordTarget(arrived, typ, out, vals); err != nil {
				// Withhold the message; the next read fails on the closed
				// target and sends the client the reason.
				s.recordingFailed(err)
				continue
			}
		}
		if len(out) != len(body) || (len(out) > 0 && &out[0] != &body[0]) {
			raw = nil // rewritten: frame it anew
		}
		s.cwMu.Lock()
		err = writeMsg(w, typ, out, raw)
		s.cwMu.Unlock()
		if err != nil {
			return err
		}
	}
}

// maskFailure ends the session when a message could not be masked: the
// message is not sent, the client gets a clear error (fail closed).
func (s *Session) maskFailure(w *bufio.Writer, err error) error {
	s.server.opts.Metrics.MaskFailures.Inc()
	s.log.Error("response withheld: masking failed; ending session", "err", err)
	pe := &pgError{Severity: "FATAL", Code: codeInternalError,
		Message: "gatehouse withheld a response it could not mask",
		Hint:    "select the column as text, or ask an administrator to add a column rule"}
	_, _ = w.Write(pe.appendTo(nil))
	_ = w.Flush()
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// reviewInfo is a parsed statement that needs approval before it runs.
type reviewInfo struct {
	d   *denial
	sql string
}

// frameOf returns a message's framed bytes: raw when the reader had it
// contiguous, else a new frame.
func frameOf(typ byte, body, raw []byte) []byte {
	if raw != nil {
		return raw
	}
	return appendMsg(nil, typ, func(b []byte) []byte { return append(b, body...) })
}

// observe records a completed statement's latency: from its forwarding to
// its completion (a held statement's wait for approval included).
func (s *Session) observe(it item) {
	if !it.start.IsZero() {
		s.latency.Observe(time.Since(it.start).Seconds())
	}
}
