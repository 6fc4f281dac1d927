package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"cel.dev/cel-go/parser"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/sql/pg"
)

// Action is what a rule decides. Actions are ordered by strictness, so the
// strictest of several matching rules is simply the largest.
type Action int

const (
	Allow Action = iota
	Review
	Deny
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Review:
		return "review"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// ParseAction parses "allow", "review" or "deny" (any case).
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "allow":
		return Allow, nil
	case "review":
		return Review, nil
	case "deny":
		return Deny, nil
	}
	return 0, fmt.Errorf("unknown action %q (want allow, review or deny)", s)
}

// MarshalText makes Action readable in YAML and JSON.
func (a Action) MarshalText() ([]byte, error) {
	if a < Allow || a > Deny {
		return nil, fmt.Errorf("invalid action %d", int(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText accepts what ParseAction accepts.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Rule is one policy rule: when the CEL expression When holds, Action
// applies. Message and Hint are shown to the client on deny and review.
type Rule struct {
	Name      string   `yaml:"name" json:"name"`
	When      string   `yaml:"when" json:"when"`
	Action    Action   `yaml:"action" json:"action"`
	Reviewers []string `yaml:"reviewers,omitempty" json:"reviewers,omitempty"` // groups that may approve a review
	Message   string   `yaml:"message,omitempty" json:"message,omitempty"`
	Hint      string   `yaml:"hint,omitempty" json:"hint,omitempty"`
}

// Config is a policy as configured: rules and the action when none matches.
type Config struct {
	Rules   []Rule `yaml:"rules" json:"rules"`
	Default Action `yaml:"default" json:"default"`
}

// RuleError reports a rule that does not compile. Index is the rule's
// position in Config.Rules and Field the offending field ("name", "when",
// "action", "reviewers"), so a config loader can point at file:line.
type RuleError struct {
	Index int
	Field string
	Err   error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rules[%d].%s: %v", e.Index, e.Field, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// SessionInfo describes the session a statement arrives on.
type SessionInfo struct {
	ID            string `json:"id"`
	ClientAddr    string `json:"client_addr"`
	InTransaction bool   `json:"in_transaction"`
}

// Input is what a decision is made about. Statement is nil when deciding
// whether the principal may use Connection and Role at all; rules then see
// an empty stmt (stmt.command == "").
type Input struct {
	Principal  *identity.Principal
	Connection string
	Role       string
	Session    SessionInfo
	Statement  *pg.Statement
}

// Decision is the outcome of Evaluate. Rule names the deciding rule:
// "default" when no rule matched, "unparseable" for a statement that does
// not parse.
type Decision struct {
	Action    Action
	Rule      string
	Reviewers []string
	Message   string
	Hint      string
}

// Rule names Evaluate uses for decisions no configured rule made.
const (
	RuleDefault     = "default"
	RuleUnparseable = "unparseable"
)

// principalFacts is the principal as rules see it.
type principalFacts struct {
	Name    string         `json:"name"`
	Issuer  string         `json:"issuer"`
	Subject string         `json:"subject"`
	Groups  []string       `json:"groups"`
	Claims  map[string]any `json:"claims"`
}

// Policy is a compiled Config. It is immutable and safe for concurrent use.
type Policy struct {
	rules []compiledRule
	def   Action
}

type compiledRule struct {
	Rule
	prg cel.Program
}

// newEnv builds the CEL environment rules are checked against.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(ext.ParseStructTag("json"),
			reflect.TypeFor[pg.Statement](), reflect.TypeFor[principalFacts](), reflect.TypeFor[SessionInfo]()),
		cel.Variable("principal", cel.ObjectType("policy.principalFacts")),
		cel.Variable("connection", cel.StringType),
		cel.Variable("role", cel.StringType),
		cel.Variable("session", cel.ObjectType("policy.SessionInfo")),
		cel.Variable("stmt", cel.ObjectType("pg.Statement")),
		ext.Strings(),
		cel.OptionalTypes(), // principal.claims.?ref.orValue("")
		// has_group("x") is shorthand for "x" in principal.groups; a macro
		// costs nothing at evaluation time.
		cel.Macros(cel.GlobalMacro("has_group", 1,
			func(eh parser.ExprHelper, _ ast.Expr, args []ast.Expr) (ast.Expr, *common.Error) {
				return eh.NewCall(operators.In, args[0], eh.NewSelect(eh.NewIdent("principal"), "groups")), nil
			})),
		cel.Function("matches_name",
			cel.Overload("matches_name_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(n, p ref.Val) ref.Val {
					return types.Bool(pg.MatchName(string(n.(types.String)), string(p.(types.String))))
				}))),
		cel.Function("touches",
			cel.Overload("touches_list_string", []*cel.Type{cel.ListType(cel.StringType), cel.StringType}, cel.BoolType,
				cel.BinaryBinding(touches)),
			cel.Overload("touches_list_list", []*cel.Type{cel.ListType(cel.StringType), cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(touches))),
		cel.Function("touches_column",
			cel.Overload("touches_column_list_string", []*cel.Type{cel.ListType(cel.StringType), cel.StringType}, cel.BoolType,
				cel.BinaryBinding(touchesColumn)),
			cel.Overload("touches_column_list_list", []*cel.Type{cel.ListType(cel.StringType), cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(touchesColumn))),
		cel.Function("calls",
			cel.Overload("calls_stmt_string", []*cel.Type{cel.ObjectType("pg.Statement"), cel.StringType}, cel.BoolType,
				cel.BinaryBinding(calls)),
			cel.Overload("calls_stmt_list", []*cel.Type{cel.ObjectType("pg.Statement"), cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(calls))),
	)
}

// stringsOf returns the strings of a CEL list. Lists that come straight
// from a Statement are native []string and need no conversion.
func stringsOf(v ref.Val) ([]string, bool) {
	if ss, ok := v.Value().([]string); ok {
		return ss, true
	}
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, false
	}
	n, ok := l.Size().(types.Int)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, int(n))
	for i := types.Int(0); i < n; i++ {
		s, ok := l.Get(i).(types.String)
		if !ok {
			return nil, false
		}
		out = append(out, string(s))
	}
	return out, true
}

// anyMatch reports whether a name of names matches one of the patterns
// held by p (a string or a list of strings) by pg.MatchName.
func anyMatch(names []string, p ref.Val) ref.Val {
	return anyMatchBy(names, p, pg.MatchName)
}

// anyMatchBy is anyMatch with another matcher.
func anyMatchBy(names []string, p ref.Val, match func(name, pattern string) bool) ref.Val {
	if s, ok := p.(types.String); ok {
		for _, n := range names {
			if match(n, string(s)) {
				return types.True
			}
		}
		return types.False
	}
	pats, ok := stringsOf(p)
	if !ok {
		return types.NewErr("patterns must be strings")
	}
	for _, n := range names {
		for _, pat := range pats {
			if match(n, pat) {
				return types.True
			}
		}
	}
	return types.False
}

// touches(list, pattern) reports whether any name in list matches pattern
// (or any of a list of patterns) by pg.MatchName.
func touches(list, pattern ref.Val) ref.Val {
	names, ok := stringsOf(list)
	if !ok {
		return types.NewErr("touches: names must be a list of strings")
	}
	return anyMatch(names, pattern)
}

// touchesColumn(list, pattern) reports whether any column in list (one of
// the statement's column facts) matches pattern (or any of a list of
// patterns) by pg.MatchColumn.
func touchesColumn(list, pattern ref.Val) ref.Val {
	names, ok := stringsOf(list)
	if !ok {
		return types.NewErr("touches_column: columns must be a list of strings")
	}
	return anyMatchBy(names, pattern, pg.MatchColumn)
}

// calls(stmt, pattern) is touches(stmt.functions, pattern).
func calls(stmt, pattern ref.Val) ref.Val {
	st, ok := stmt.Value().(*pg.Statement)
	if !ok {
		return types.NewErr("calls: first argument must be stmt")
	}
	return anyMatch(st.Functions, pattern)
}

// Compile type-checks every rule and prepares it for evaluation. Errors are
// *RuleError.
func Compile(cfg Config) (*Policy, error) {
	if cfg.Default < Allow || cfg.Default > Deny {
		return nil, fmt.Errorf("default: invalid action %d", int(cfg.Default))
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("policy environment: %w", err)
	}
	p := &Policy{def: cfg.Default, rules: make([]compiledRule, 0, len(cfg.Rules))}
	seen := make(map[string]bool, len(cfg.Rules))
	for i, r := range cfg.Rules {
		switch {
		case strings.TrimSpace(r.Name) == "":
			return nil, &RuleError{Index: i, Field: "name", Err: errors.New("rule has no name")}
		case r.Name == RuleDefault || r.Name == RuleUnparseable:
			return nil, &RuleError{Index: i, Field: "name", Err: fmt.Errorf("%q is reserved", r.Name)}
		case seen[r.Name]:
			return nil, &RuleError{Index: i, Field: "name", Err: fmt.Errorf("duplicate rule name %q", r.Name)}
		case r.Action < Allow || r.Action > Deny:
			return nil, &RuleError{Index: i, Field: "action", Err: fmt.Errorf("invalid action %d", int(r.Action))}
		case r.Action == Review && len(r.Reviewers) == 0:
			// A review nobody may approve would hold statements forever.
			return nil, &RuleError{Index: i, Field: "reviewers", Err: errors.New("a review rule needs at least one reviewer group")}
		case strings.TrimSpace(r.When) == "":
			return nil, &RuleError{Index: i, Field: "when", Err: errors.New("empty condition")}
		}
		seen[r.Name] = true
		checked, iss := env.Compile(r.When)
		if iss.Err() != nil {
			return nil, &RuleError{Index: i, Field: "when", Err: iss.Err()}
		}
		if !checked.OutputType().IsExactType(cel.BoolType) {
			return nil, &RuleError{Index: i, Field: "when", Err: fmt.Errorf("condition is %s, want bool", checked.OutputType())}
		}
		prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			return nil, &RuleError{Index: i, Field: "when", Err: err}
		}
		p.rules = append(p.rules, compiledRule{Rule: r, prg: prg})
	}
	return p, nil
}

// activation hands the input to CEL without building a map per call.
type activation struct {
	principal  *principalFacts
	connection string
	role       string
	session    *SessionInfo
	stmt       *pg.Statement
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "stmt":
		return a.stmt, true
	case "principal":
		return a.principal, true
	case "connection":
		return a.connection, true
	case "role":
		return a.role, true
	case "session":
		return a.session, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

var emptyStatement = &pg.Statement{}

// Evaluate decides in. The strictest matching rule wins (the first of equal
// strictness); if none matches, the configured default applies. It fails
// closed: a statement that did not parse is denied by rule "unparseable",
// and a rule whose evaluation fails denies, naming that rule.
func (p *Policy) Evaluate(in Input) Decision {
	st := in.Statement
	if st == nil {
		st = emptyStatement
	}
	if st.ParseError {
		return Decision{Action: Deny, Rule: RuleUnparseable, Message: "statement does not parse: " + st.Error,
			Hint: "Gatehouse judges statements with PostgreSQL's grammar and refuses what it cannot read"}
	}
	act := &activation{connection: in.Connection, role: in.Role, session: &in.Session, stmt: st}
	if pr := in.Principal; pr != nil {
		act.principal = &principalFacts{Name: pr.Name, Issuer: pr.Issuer, Subject: pr.Subject, Groups: pr.Groups, Claims: pr.Claims}
	} else {
		act.principal = &principalFacts{}
	}
	best := -1
	for i := range p.rules {
		r := &p.rules[i]
		out, _, err := r.prg.Eval(act)
		if err != nil {
			return Decision{Action: Deny, Rule: r.Name,
				Message: fmt.Sprintf("policy rule %q could not be evaluated: %v", r.Name, err)}
		}
		if b, ok := out.(types.Bool); !ok || !bool(b) {
			if !ok {
				return Decision{Action: Deny, Rule: r.Name,
					Message: fmt.Sprintf("policy rule %q returned %v, not a bool", r.Name, out)}
			}
			continue
		}
		if best < 0 || r.Action > p.rules[best].Action {
			best = i
			if r.Action == Deny {
				break // nothing is stricter
			}
		}
	}
	if best < 0 {
		return Decision{Action: p.def, Rule: RuleDefault}
	}
	r := &p.rules[best].Rule
	return Decision{Action: r.Action, Rule: r.Name, Reviewers: r.Reviewers, Message: r.Message, Hint: r.Hint}
}
