package policy

import (
	sqlpg "github.com/gatehouse/gatehouse/internal/sql/pg"
)

// StatementDecision is the decision on one statement of a SQL string.
type StatementDecision struct {
	Statement *sqlpg.Statement `json:"facts"`
	Decision  Decision         `json:"decision"`
}

// Judgement is the decision on a whole SQL string: the strictest of its
// statements' decisions (a Query in which any statement is denied runs none
// of it).
type Judgement struct {
	Decision   Decision
	Statements []StatementDecision
}

// Judge analyses sql, resolves EXECUTE of names prepared earlier in ps (nil:
// none), and evaluates every statement with base's principal, connection,
// role and session. When the whole string is allowed, ps learns the names
// it PREPAREs or DEALLOCATEs, so a later EXECUTE is judged as what it runs.
func (p *Policy) Judge(a *sqlpg.Analyzer, sql string, ps *sqlpg.PreparedSet, base Input) Judgement {
	an, _ := a.Analyze(sql) // a syntax error comes back as a ParseError statement
	if ps == nil {
		ps = sqlpg.NewPreparedSet()
	}
	j := Judgement{Decision: Decision{Action: Allow, Rule: RuleDefault}, Statements: make([]StatementDecision, 0, len(an.Statements))}
	first := true
	for _, st := range an.Statements {
		st = a.Resolve(st, ps)
		in := base
		in.Statement = st
		dec := p.Evaluate(in)
		j.Statements = append(j.Statements, StatementDecision{Statement: st, Decision: dec})
		if first || dec.Action > j.Decision.Action {
			j.Decision = dec
			first = false
		}
	}
	if j.Decision.Action == Allow {
		for _, sd := range j.Statements {
			ps.Apply(sd.Statement)
		}
	}
	return j
}
