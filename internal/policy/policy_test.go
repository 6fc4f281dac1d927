package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/sql/pg"
)

func mustCompile(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		rule  Rule
		field string
	}{
		{Rule{When: "true"}, "name"},
		{Rule{Name: "default", When: "true"}, "name"},
		{Rule{Name: "x", When: "stmt.no_such_fact"}, "when"},
		{Rule{Name: "x", When: "stmt.command"}, "when"}, // not a bool
		{Rule{Name: "x", When: "touches(stmt.reads, 1)"}, "when"},
		{Rule{Name: "x", When: ""}, "when"},
		{Rule{Name: "x", When: "true", Action: 7}, "action"},
		{Rule{Name: "x", When: "true", Action: Review}, "reviewers"},
	}
	for _, tt := range tests {
		_, err := Compile(Config{Rules: []Rule{{Name: "ok", When: "true"}, tt.rule}})
		var re *RuleError
		if !errors.As(err, &re) || re.Index != 1 || re.Field != tt.field {
			t.Errorf("%+v: err = %v, want RuleError at rules[1].%s", tt.rule, err, tt.field)
		}
	}
	_, err := Compile(Config{Rules: []Rule{{Name: "a", When: "true"}, {Name: "a", When: "true"}}})
	if err == nil || !strings.Contains(err.Error(), "rules[1].name") {
		t.Errorf("duplicate name: %v", err)
	}
}

func TestParseAction(t *testing.T) {
	for s, want := range map[string]Action{"allow": Allow, "Review": Review, "DENY": Deny} {
		if got, err := ParseAction(s); err != nil || got != want {
			t.Errorf("ParseAction(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseAction("block"); err == nil {
		t.Error("ParseAction(block) succeeded")
	}
	if !(Allow < Review && Review < Deny) {
		t.Error("actions are not ordered by strictness")
	}
}

func TestEvaluate(t *testing.T) {
	p := mustCompile(t, Config{Default: Deny, Rules: []Rule{
		{Name: "readers", When: `role == "reader" && stmt.command == "SELECT"`, Action: Allow},
		{Name: "gha-main-writes", Action: Allow, When: `role == "writer" && principal.issuer == "https://token.actions.githubusercontent.com" &&
			principal.claims.repository == "acme/shop" && principal.claims.ref == "refs/heads/main"`},
		{Name: "security-review", When: `has_group("agents") && touches(stmt.updates, "public.payments")`, Action: Review, Reviewers: []string{"security"}},
		{Name: "claims-typo", When: `connection == "broken" && principal.claims.nope == "x"`, Action: Allow},
		{Name: "funcs", When: `calls(stmt, ["pg_read_*", "lo_import"])`, Action: Deny, Message: "no files"},
		{Name: "session", When: `session.in_transaction && session.client_addr.startsWith("10.")`, Action: Review, Reviewers: []string{"ops"}},
	}})
	agent := &identity.Principal{Name: "ci-agent", Groups: []string{"agents"}, Issuer: "static"}
	gha := &identity.Principal{Name: "gha", Issuer: "https://token.actions.githubusercontent.com",
		Claims: map[string]any{"repository": "acme/shop", "ref": "refs/heads/main"}}
	ghaBranch := &identity.Principal{Name: "gha", Issuer: "https://token.actions.githubusercontent.com",
		Claims: map[string]any{"repository": "acme/shop", "ref": "refs/heads/feature"}}
	a := pg.NewAnalyzer(100)
	stmt := func(sql string) *pg.Statement {
		an, _ := a.Analyze(sql)
		return an.Statements[0]
	}
	tests := []struct {
		name string
		in   Input
		want Action
		rule string
	}{
		{"reader select", Input{Principal: agent, Role: "reader", Statement: stmt("SELECT 1")}, Allow, "readers"},
		{"reader insert", Input{Principal: agent, Role: "reader", Statement: stmt("INSERT INTO t VALUES (1)")}, Deny, RuleDefault},
		{"gha main", Input{Principal: gha, Role: "writer", Statement: stmt("INSERT INTO t VALUES (1)")}, Allow, "gha-main-writes"},
		{"gha branch", Input{Principal: ghaBranch, Role: "writer", Statement: stmt("INSERT INTO t VALUES (1)")}, Deny, RuleDefault},
		{"strictest wins", Input{Principal: agent, Role: "reader", Statement: stmt("SELECT pg_read_file('x')")}, Deny, "funcs"},
		{"review", Input{Principal: agent, Statement: stmt("UPDATE payments SET a = 1")}, Review, "security-review"},
		{"no group", Input{Principal: gha, Role: "writer", Statement: stmt("UPDATE payments SET a = 1")}, Allow, "gha-main-writes"},
		{"eval error fails closed", Input{Principal: agent, Connection: "broken", Statement: stmt("SELECT 1")}, Deny, "claims-typo"},
		{"unparseable", Input{Principal: agent, Role: "reader", Statement: stmt("SELEC 1")}, Deny, RuleUnparseable},
		{"nil principal and statement", Input{}, Deny, RuleDefault},
		{"session", Input{Principal: agent, Session: SessionInfo{InTransaction: true, ClientAddr: "10.1.2.3"}, Statement: stmt("INSERT INTO t VALUES (1)")}, Review, "session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.in)
			if d.Action != tt.want || d.Rule != tt.rule {
				t.Errorf("got %s by %q (%s), want %s by %q", d.Action, d.Rule, d.Message, tt.want, tt.rule)
			}
			if d.Action == Review && len(d.Reviewers) == 0 {
				t.Error("review without reviewers")
			}
		})
	}
}

func BenchmarkEvaluate(b *testing.B) {
	p := loadReference(b)
	a := pg.NewAnalyzer(100)
	for _, q := range []string{"SELECT abalance FROM pgbench_accounts WHERE aid = 1", "UPDATE payments SET amount = 0 WHERE id = 1"} {
		an, _ := a.Analyze(q)
		in := Input{Principal: agent, Connection: "shop", Role: "writer", Statement: an.Statements[0]}
		b.Run(strings.Fields(q)[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Evaluate(in)
			}
		})
	}
}

// TestDocExamples keeps the conditions shown in docs/policy.md compiling.
func TestDocExamples(t *testing.T) {
	for _, when := range []string{
		`role == "reader" && stmt.command in ["SELECT", "SHOW", "BEGIN", "COMMIT", "ROLLBACK"] &&
      stmt.inserts.size() == 0 && stmt.updates.size() == 0 && stmt.deletes.size() == 0 &&
      stmt.into.target == "" && !stmt.opaque && stmt.functions.all(f, !matches_name(f, "pg_*"))`,
		`!has_group("dba") && (stmt.objects.size() > 0 || stmt.truncates.size() > 0 || stmt.opaque)`,
		`touches(stmt.deletes, "payments") || touches(stmt.truncates, "payments")`,
		`touches(stmt.alters, "payments") || touches(stmt.drops, "payments") || touches(stmt.renames, "payments")`,
		`role == "writer" && principal.issuer == "https://token.actions.githubusercontent.com" &&
      "repository" in principal.claims && principal.claims.repository == "acme/shop" &&
      "ref" in principal.claims && principal.claims.ref == "refs/heads/main"`,
		`role == "writer" && !(principal.claims.?repository.orValue("") == "acme/shop")`,
		`touches(stmt.reads, ["a", "b*"]) && matches_name("public.x", "x") && session.id != ""`,
		`touches_column(stmt.column_exprs, "payments.pan") || touches(stmt.whole_row_reads, "payments") ||
      touches_column(stmt.filter_exprs, "payments.pan")`,
		`touches_column(stmt.filter_columns, ["public.payments.pan", "customers.*"])`,
	} {
		if _, err := Compile(Config{Rules: []Rule{{Name: "doc", When: when, Action: Deny}}}); err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
	p := mustCompile(t, Config{Default: Allow, Rules: []Rule{{Name: "w", Action: Deny,
		When: `role == "writer" && !(principal.claims.?repository.orValue("") == "acme/shop")`}}})
	if d := p.Evaluate(Input{Principal: &identity.Principal{}, Role: "writer"}); d.Action != Deny {
		t.Errorf("missing claim: %v", d)
	}
}

// TestJudgeMemo: a session's memo gives the decisions evaluation gives, for
// repeated statements, across the in-transaction flag, and with EXECUTE of
// names whose meaning changes.
func TestJudgeMemo(t *testing.T) {
	p := mustCompile(t, Config{Default: Allow, Rules: []Rule{
		{Name: "writes-in-tx", When: `size(stmt.inserts) > 0 && !session.in_transaction`, Action: Deny},
	}})
	a := pg.NewAnalyzer(100)
	ps, plain := pg.NewPreparedSet(), pg.NewPreparedSet()
	var memo Memo
	base := Input{Principal: &identity.Principal{Name: "a"}, Role: "writer"}
	steps := []struct {
		sql  string
		inTx bool
		want Action
	}{
		{"SELECT 1", false, Allow},
		{"SELECT 2", false, Allow}, // same normalised statement: from the memo
		{"INSERT INTO t VALUES (1)", false, Deny},
		{"INSERT INTO t VALUES (2)", true, Allow}, // same statement, other flag
		{"INSERT INTO t VALUES (3)", false, Deny},
		{"PREPARE s AS SELECT 1", false, Allow},
		{"EXECUTE s", false, Allow},
		{"DEALLOCATE s", false, Allow},
		{"PREPARE s AS INSERT INTO t VALUES (1)", true, Allow},
		{"EXECUTE s", true, Allow},
		{"EXECUTE s", false, Deny}, // the name now means an INSERT
	}
	for _, st := range steps {
		in := base
		in.Session.InTransaction = st.inTx
		got := p.Judge(a, st.sql, ps, in, &memo).Decision
		want := p.Judge(a, st.sql, plain, in, nil).Decision
		if got.Action != st.want || got.Action != want.Action || got.Rule != want.Rule {
			t.Errorf("%s (in tx %v): memo %+v, evaluated %+v, want %s", st.sql, st.inTx, got, want, st.want)
		}
	}
	if len(memo.m) == 0 {
		t.Fatal("the memo remembered nothing")
	}
}
