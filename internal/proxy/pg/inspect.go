package pg

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	sqlpg "github.com/gatehouse/gatehouse/internal/sql/pg"
)

// Inspection is the core a session calls for every statement: analysis,
// policy and (when configured) the audit log. Analyzer and Policies are
// both set or both nil (a relay-only gateway).
type Inspection struct {
	Analyzer *sqlpg.Analyzer
	// Policies holds one compiled policy per connection name (each with
	// that connection's default action).
	Policies map[string]*policy.Policy
	// Required is how many distinct approvals each review rule needs (by
	// rule name; missing means 1).
	Required map[string]int
	// Grants is how long a session a review rule holds at connect time
	// lasts once approved (by rule name).
	Grants map[string]time.Duration
}

// ruleFunctionCall names the refusal of fast-path FunctionCall messages.
const ruleFunctionCall = "function-call-protocol"

// judgeFunctionCall decides on a fast-path FunctionCall. It names a function
// by OID alone, past any statement analysis (pg_read_file would be one OID
// away), so an inspecting gateway refuses it; clients call functions with
// SELECT instead. A relay-only gateway passes it.
func (s *Session) judgeFunctionCall(ctx context.Context, body []byte) (*denial, uint64) {
	in := s.server.opts.Inspection
	if in == nil || in.Analyzer == nil {
		return nil, 0
	}
	var oid uint32
	if len(body) >= 4 {
		oid = binary.BigEndian.Uint32(body)
	}
	d := policy.Decision{Action: policy.Deny, Rule: ruleFunctionCall,
		Message: "the fast-path function call protocol bypasses statement analysis",
		Hint:    "call the function with SELECT instead (libpq's large-object API uses this protocol)"}
	s.countStatement(d.Action)
	stmtID, _ := s.auditStatement(ctx, fmt.Sprintf("<FunctionCall oid=%d>", oid), policy.Judgement{Decision: d})
	s.log.Info("statement refused", "rule", d.Rule, "decision", "deny")
	return &denial{rule: d.Rule, message: d.Message, hint: d.Hint}, stmtID
}

// countStatement counts a statement judged a in the connection's
// statements counter. Looking the counter up by its labels on every
// statement (hashing and matching them) was 1% of the gateway's CPU at 1
// client; the session keeps each decision's counter once looked up.
func (s *Session) countStatement(a policy.Action) {
	if a < 0 || int(a) >= len(s.judged) {
		s.server.opts.Metrics.Statements.WithLabelValues(s.Connection.Name, a.String()).Inc()
		return
	}
	c := s.judged[a]
	if c == nil {
		c = s.server.opts.Metrics.Statements.WithLabelValues(s.Connection.Name, a.String())
		s.judged[a] = c
	}
	c.Inc()
}

// judge analyses sql (a Query's text, or a Parse's when stmtName is
// non-nil), evaluates every statement in it and returns the denial of the
// strictest decision, or nil when all are allowed. stmtID identifies the
// audited statement event (0 when auditing is off).
func (s *Session) judge(ctx context.Context, sql string, stmtName *string) (d *denial, stmtID uint64) {
	in := s.server.opts.Inspection
	if in == nil || in.Analyzer == nil {
		return nil, 0
	}
	pol := in.Policies[s.Connection.Name]
	base := policy.Input{
		Principal:  s.Principal,
		Connection: s.Connection.Name,
		Role:       s.Role.Name,
		Session:    policy.SessionInfo{ID: s.ID, ClientAddr: s.ClientAddr, InTransaction: s.txStatus.Load() != 'I'},
	}
	j := pol.Judge(in.Analyzer, sql, s.prepared, base, &s.decisions)
	worst := j.Decision
	s.countStatement(worst.Action)
	// Audit before forward: the decision is durable before the statement
	// (or its refusal) goes anywhere.
	stmtID, auditDenial := s.auditStatement(ctx, sql, j)
	if worst.Action != policy.Allow {
		s.log.Info("statement refused", "rule", worst.Rule, "decision", worst.Action.String())
		return &denial{rule: worst.Rule, review: worst.Action == policy.Review, reviewers: worst.Reviewers, message: worst.Message, hint: worst.Hint}, stmtID
	}
	if auditDenial != nil {
		return auditDenial, 0
	}
	// A protocol-level Parse shares the prepared-name namespace with SQL
	// PREPARE: remember what the name stands for, so a later SQL EXECUTE of
	// it is judged as the statement it runs.
	if stmtName != nil && *stmtName != "" && len(j.Statements) == 1 {
		s.prepared.Prepare(*stmtName, j.Statements[0].Statement)
	}
	return nil, stmtID
}
