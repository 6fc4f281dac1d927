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
//
// memo, if not nil, is the session's: decisions on statements it has seen
// are reused (see Memo).
func (p *Policy) Judge(a *sqlpg.Analyzer, sql string, ps *sqlpg.PreparedSet, base Input, memo *Memo) Judgement {
	an, _ := a.Analyze(sql) // a syntax error comes back as a ParseError statement
	if ps == nil {
		ps = sqlpg.NewPreparedSet()
	}
	j := Judgement{Decision: Decision{Action: Allow, Rule: RuleDefault}, Statements: make([]StatementDecision, 0, len(an.Statements))}
	first := true
	for _, st := range an.Statements {
		st = a.Resolve(st, ps)
		dec, ok := memo.get(st, base.Session.InTransaction)
		if !ok {
			in := base
			in.Statement = st
			dec = p.Evaluate(in)
			memo.put(st, base.Session.InTransaction, dec)
		}
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

// Memo remembers one session's decisions. Everything a rule sees is fixed
// for a session (principal, connection, role, session id and address)
// except whether a transaction is open and the statement, and a statement's
// facts are the analyser's, shared by every execution of the same
// normalised text: so a decision is a function of (statement, in
// transaction), and evaluating the rules again for a statement run a
// thousand times would only cost CPU. Nothing in the rule language reads a
// clock. A Memo belongs to one session (one goroutine) and one Policy.
type Memo struct {
	m map[memoKey]Decision
}

type memoKey struct {
	st   *sqlpg.Statement // the analyser's; held here, so never reused
	inTx bool
}

// maxMemo bounds a session's memo; it starts over when full.
const maxMemo = 256

func (m *Memo) get(st *sqlpg.Statement, inTx bool) (Decision, bool) {
	if m == nil {
		return Decision{}, false
	}
	d, ok := m.m[memoKey{st, inTx}]
	return d, ok
}

func (m *Memo) put(st *sqlpg.Statement, inTx bool, d Decision) {
	if m == nil {
		return
	}
	if m.m == nil || len(m.m) >= maxMemo {
		m.m = make(map[memoKey]Decision)
	}
	m.m[memoKey{st, inTx}] = d
}
