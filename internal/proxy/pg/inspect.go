package pg

import (
	"context"

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
	an, _ := in.Analyzer.Analyze(sql) // a syntax error comes back as a ParseError statement
	worst := policy.Decision{Action: policy.Allow}
	resolved := make([]*sqlpg.Statement, 0, len(an.Statements))
	for _, st := range an.Statements {
		st = in.Analyzer.Resolve(st, s.prepared)
		resolved = append(resolved, st)
		dec := pol.Evaluate(policy.Input{
			Principal:  s.Principal,
			Connection: s.Connection.Name,
			Role:       s.Role.Name,
			Session:    policy.SessionInfo{ID: s.ID, ClientAddr: s.ClientAddr, InTransaction: s.txStatus.Load() != 'I'},
			Statement:  st,
		})
		if dec.Action > worst.Action {
			worst = dec
		}
	}
	s.server.opts.Metrics.Statements.WithLabelValues(s.Connection.Name, worst.Action.String()).Inc()
	if worst.Action != policy.Allow {
		s.log.Info("statement refused", "rule", worst.Rule, "decision", worst.Action.String())
		return &denial{rule: worst.Rule, review: worst.Action == policy.Review, message: worst.Message, hint: worst.Hint}, 0
	}
	// Remember what prepared names stand for, so EXECUTE name is judged as
	// the statement it runs. A protocol-level Parse shares the namespace.
	if stmtName != nil {
		if *stmtName != "" && len(resolved) == 1 {
			s.prepared.Prepare(*stmtName, resolved[0])
		}
	} else {
		for _, st := range resolved {
			s.prepared.Apply(st)
		}
	}
	return nil, 0
}
