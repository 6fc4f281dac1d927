package pg

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/mask"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// ruleAuditUnavailable names the refusal of a statement whose audit record
// could not be written (fail closed: audit before forward).
const ruleAuditUnavailable = "audit-unavailable"

// codeIOError is the SQLSTATE of that refusal: the gateway's own storage
// failed, not the statement.
const codeIOError = "58030"

func auditPrincipal(p *identity.Principal) *audit.Principal {
	if p == nil {
		return nil
	}
	return &audit.Principal{Issuer: p.Issuer, Subject: p.Subject, Name: p.Name, Groups: p.Groups}
}

// event is an audit event with the session's attributes filled in.
func (s *Session) event(kind audit.Kind) audit.Event {
	p := s.auditPrin
	if p == nil {
		p = auditPrincipal(s.Principal)
	}
	return audit.Event{
		Kind:       kind,
		SessionID:  s.ID,
		Principal:  p,
		Source:     s.ClientAddr,
		Connection: s.Connection.Name,
		Role:       s.Role.Name,
		Database:   s.Connection.Database,
		Protocol:   "postgres",
	}
}

// appendAudit writes ev durably; it reports false (and counts and logs the
// failure) when the audit log cannot take it.
func (s *Server) appendAudit(ctx context.Context, ev audit.Event) (int64, bool) {
	if s.opts.Audit == nil {
		return 0, true
	}
	idx, err := s.opts.Audit.Append(ctx, ev)
	if err != nil {
		s.opts.Metrics.AuditFailures.Inc()
		s.log.Error("audit append failed", "kind", string(ev.Kind), "session", ev.SessionID, "err", err)
		return 0, false
	}
	return idx, true
}

// appendAuditAfter queues ev to share the log's next commit
// (audit.Log.AppendAfter), for events nothing waits on. It reports whether
// the log took it; a failure is counted and logged like appendAudit's.
func (s *Server) appendAuditAfter(ev audit.Event) bool {
	if s.opts.Audit == nil {
		return true
	}
	if err := s.opts.Audit.AppendAfter(ev); err != nil {
		s.opts.Metrics.AuditFailures.Inc()
		s.log.Error("audit append failed", "kind", string(ev.Kind), "session", ev.SessionID, "err", err)
		return false
	}
	return true
}

// auditStatement records a judged statement before it may be forwarded.
// It returns the event's index, or a denial when the record could not be
// written.
func (s *Session) auditStatement(ctx context.Context, sql string, j policy.Judgement) (uint64, *denial) {
	if s.server.opts.Audit == nil {
		return 0, nil
	}
	ev := s.event(audit.KindStatement)
	ev.Statement = s.maskText(sql)
	ev.Decision = j.Decision.Action.String()
	ev.Rule = j.Decision.Rule
	// The facts as json.Marshal writes a []*Statement, from each
	// statement's own marshalled form.
	facts := append(s.facts[:0], '[')
	defer func() {
		if cap(facts) <= maxFactsScratch {
			s.facts = facts[:0]
		}
	}()
	seen := map[string]bool{}
	var err error
	for i, sd := range j.Statements {
		if i > 0 {
			facts = append(facts, ',')
		}
		if facts, err = sd.Statement.AppendJSON(facts); err != nil {
			s.log.Error("audit: statement facts not encoded", "err", err)
			return 0, auditUnavailable()
		}
		st := sd.Statement
		if st == nil {
			continue
		}
		for _, list := range [][]string{st.Reads, st.Inserts, st.Updates, st.Deletes, st.Truncates, st.Drops, st.Alters, st.Renames, st.Creates} {
			for _, t := range list {
				if !seen[t] {
					seen[t] = true
					ev.Tables = append(ev.Tables, s.maskText(t)) // a name is as written
				}
			}
		}
	}
	ev.Facts, err = s.maskFacts(append(facts, ']'))
	if err != nil {
		s.log.Error("audit: statement facts not masked", "err", err)
		return 0, auditUnavailable()
	}
	idx, ok := s.server.appendAudit(ctx, ev)
	if !ok {
		return 0, auditUnavailable()
	}
	return uint64(idx) + 1, nil // 0 means "not audited"
}

// maxFactsScratch bounds the facts buffer a session keeps between
// statements; a rare statement with larger facts allocates its own.
const maxFactsScratch = 16 << 10

// auditUnavailable is the denial of a statement whose audit event could not
// be written.
func auditUnavailable() *denial {
	return &denial{rule: ruleAuditUnavailable, code: codeIOError,
		message: "the audit record could not be written, so the statement was not run",
		hint:    "gatehouse fails closed when its audit log is unavailable; retry later and tell the operators"}
}

// maskFacts masks what the detectors find in the strings of statement
// facts: they quote the statement (a parse error names the token it stopped
// at, names are as written), and a card number typed into a statement must
// not reach the audit log that way. The JSON is decoded and the strings
// masked one by one, since a custom detector's replacement could break the
// JSON if the bytes were masked as they are; only facts the detectors find
// something in pay for that.
func (s *Session) maskFacts(facts []byte) ([]byte, error) {
	m := s.server.opts.Masker
	if m == nil || !m.Scan(facts) {
		return facts, nil
	}
	dec := json.NewDecoder(bytes.NewReader(facts))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode statement facts: %w", err)
	}
	return json.Marshal(maskJSONStrings(m, v))
}

// maskJSONStrings masks the strings (and numbers) of a decoded JSON value.
func maskJSONStrings(m *mask.Masker, v any) any {
	switch v := v.(type) {
	case string:
		if out, n := m.AppendMaskIfFound(nil, []byte(v)); n > 0 {
			return string(out)
		}
	case json.Number:
		if out, n := m.AppendMaskIfFound(nil, []byte(v)); n > 0 {
			return string(out) // no longer a number
		}
	case []any:
		for i := range v {
			v[i] = maskJSONStrings(m, v[i])
		}
	case map[string]any:
		for k, e := range v {
			v[k] = maskJSONStrings(m, e)
		}
	}
	return v
}

// maskText masks card numbers (and the other detectors) in text that goes
// into the audit log or a log line: literals in statements included.
func (s *Session) maskText(text string) string {
	m := s.server.opts.Masker
	if m == nil || !m.ScanString(text) {
		return text
	}
	out, _ := m.AppendMask(nil, []byte(text))
	return string(out)
}

// outcome is a statement's result as the target reported it.
type outcome struct {
	stmtID uint64
	tag    string
	code   string
	msg    string
	params []*string // an Execute's bind parameters, masked
}

// recordOutcome appends a completed statement's outcome. The statement
// already ran, so the event need not be durable before anything else
// happens: it is queued and shares the next commit (audit.Log.AppendAfter),
// costing the relay an encode, not an fsync.
func (s *Session) recordOutcome(o outcome) {
	if s.server.opts.Audit == nil || o.stmtID == 0 {
		return
	}
	ev := s.event(audit.KindStatementOutcome)
	out := &audit.Outcome{CommandTag: o.tag, SQLState: o.code, Message: o.msg}
	if o.tag != "" {
		out.Rows = rowsOf(o.tag)
	}
	ev.Outcome = out
	ev.Params = o.params
	ev.Extra = map[string]any{"statement_index": o.stmtID - 1}
	s.server.appendAuditAfter(ev)
}

// rowsOf reads the row count of a command tag ("UPDATE 3", "INSERT 0 1").
func rowsOf(tag string) int64 {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(tag[i+1:], 10, 64)
	return n
}

// errorFields extracts SQLSTATE and message from an ErrorResponse body.
func errorFields(body []byte) (code, msg string) {
	rest := body
	for len(rest) > 0 && rest[0] != 0 {
		f := rest[0]
		v, r, ok := cstring(rest[1:])
		if !ok {
			break
		}
		switch f {
		case 'C':
			code = string(v)
		case 'M':
			msg = string(v)
		}
		rest = r
	}
	return code, msg
}
