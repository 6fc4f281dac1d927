package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/policy"
	sqlpg "github.com/gatehouse/gatehouse/internal/sql/pg"
)

// Exit statuses of `policy test`: the verdict, so scripts can branch on it.
const (
	exitAllow  = 0
	exitDeny   = 1
	exitReview = 2
	exitError  = 3
)

// ruleRoleAccess names the verdict when the principal may not use the role
// at all: the gateway refuses such a session before any statement.
const ruleRoleAccess = "role-access"

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runPolicy(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(env.stderr, "usage: gatehouse policy test --config F --identity NAME --connection C --role R [--json|--jsonl] [--file F] [SQL]")
		return exitError
	}
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	path := fs.String("config", "", "config file")
	ident := fs.String("identity", "", "a static identity of the config, or any name with --groups/--claim")
	conn := fs.String("connection", "", "connection name (what clients put in dbname)")
	role := fs.String("role", "", "role name (what clients put in user)")
	asJSON := fs.Bool("json", false, "print the verdict and facts as JSON")
	jsonl := fs.Bool("jsonl", false, "read JSON lines with a sql field on stdin; write one JSON line per input")
	file := fs.String("file", "", "read the SQL from a file")
	var groups, claims stringList
	fs.Var(&groups, "groups", "groups of a principal that is not a static identity (repeatable, comma-separated)")
	fs.Var(&claims, "claim", "claim k=v of a principal that is not a static identity (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitError
	}
	cfg, err := loadConfig(env, *path)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitError
	}
	pols, err := gateway.Policies(cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return exitError
	}
	cn := cfg.Connection(*conn)
	if cn == nil {
		fmt.Fprintf(env.stderr, "policy test: unknown connection %q\n", *conn)
		return exitError
	}
	if cn.Role(*role) == nil {
		fmt.Fprintf(env.stderr, "policy test: connection %q has no role %q\n", *conn, *role)
		return exitError
	}
	principal, err := testPrincipal(cfg, *ident, groups, claims)
	if err != nil {
		fmt.Fprintln(env.stderr, "policy test:", err)
		return exitError
	}
	t := &policyTester{
		pol:       pols[cn.Name],
		analyzer:  sqlpg.NewAnalyzer(256),
		base:      policy.Input{Principal: principal, Connection: cn.Name, Role: *role, Session: policy.SessionInfo{ID: "policy-test"}},
		roleOK:    cn.Role(*role).Admits(principal.Name, principal.Groups),
		principal: principal,
	}
	if *jsonl {
		return t.jsonLines(env.stdin, env.stdout, env.stderr)
	}
	sql := strings.Join(fs.Args(), " ")
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			fmt.Fprintln(env.stderr, "policy test:", err)
			return exitError
		}
		sql = string(b)
	}
	if strings.TrimSpace(sql) == "" {
		fmt.Fprintln(env.stderr, "policy test: no SQL given (an argument, --file, or --jsonl on stdin)")
		return exitError
	}
	res := t.test(sql)
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		res.print(env.stdout)
	}
	return res.exit()
}

// testPrincipal is the config's static identity of that name, or a
// principal described by --groups and --claim.
func testPrincipal(cfg *config.Config, name string, groups, claims []string) (*identity.Principal, error) {
	if name == "" {
		return nil, errors.New("--identity is required")
	}
	if len(groups) == 0 && len(claims) == 0 {
		for _, s := range cfg.Identities.Static {
			if s.Name == name {
				return &identity.Principal{Issuer: identity.StaticIssuer, Subject: name, Name: name, Groups: s.Groups, Claims: map[string]any{}}, nil
			}
		}
		return nil, fmt.Errorf("no static identity %q in the config (describe another principal with --groups and --claim)", name)
	}
	p := &identity.Principal{Issuer: "policy-test", Subject: name, Name: name, Claims: map[string]any{}}
	for _, g := range groups {
		for _, one := range strings.Split(g, ",") {
			if one = strings.TrimSpace(one); one != "" {
				p.Groups = append(p.Groups, one)
			}
		}
	}
	for _, c := range claims {
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			return nil, fmt.Errorf("--claim %q: want key=value", c)
		}
		p.Claims[k] = v
	}
	return p, nil
}

type policyTester struct {
	pol       *policy.Policy
	analyzer  *sqlpg.Analyzer
	base      policy.Input
	roleOK    bool
	principal *identity.Principal
}

// testResult is one SQL string's verdict, as printed with --json.
type testResult struct {
	Verdict    string                     `json:"verdict"`
	Rule       string                     `json:"rule"`
	Message    string                     `json:"message,omitempty"`
	Hint       string                     `json:"hint,omitempty"`
	Reviewers  []string                   `json:"reviewers,omitempty"`
	Statements []policy.StatementDecision `json:"statements"`
}

func (t *policyTester) test(sql string) testResult {
	if !t.roleOK {
		return testResult{Verdict: "deny", Rule: ruleRoleAccess,
			Message:    fmt.Sprintf("%s may not use role %q on connection %q", t.principal.Name, t.base.Role, t.base.Connection),
			Statements: []policy.StatementDecision{}}
	}
	j := t.pol.Judge(t.analyzer, sql, nil, t.base, nil)
	return testResult{
		Verdict:    j.Decision.Action.String(),
		Rule:       j.Decision.Rule,
		Message:    j.Decision.Message,
		Hint:       j.Decision.Hint,
		Reviewers:  j.Decision.Reviewers,
		Statements: j.Statements,
	}
}

func (r testResult) exit() int {
	switch r.Verdict {
	case "allow":
		return exitAllow
	case "review":
		return exitReview
	default:
		return exitDeny
	}
}

func (r testResult) print(w io.Writer) {
	fmt.Fprintf(w, "verdict: %s\nrule:    %s\n", r.Verdict, r.Rule)
	if r.Message != "" {
		fmt.Fprintf(w, "message: %s\n", r.Message)
	}
	if len(r.Reviewers) > 0 {
		fmt.Fprintf(w, "reviewers: %s\n", strings.Join(r.Reviewers, ", "))
	}
	for i, sd := range r.Statements {
		facts, _ := json.Marshal(sd.Statement)
		fmt.Fprintf(w, "statement %d: %s (%s by %s)\n  facts: %s\n", i+1, sd.Statement.Command, sd.Decision.Action, sd.Decision.Rule, facts)
	}
}

// jsonLines answers one JSON line per input line, echoing the input's other
// fields. The exit status is the strictest verdict.
func (t *policyTester) jsonLines(in io.Reader, out, errw io.Writer) int {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	enc := json.NewEncoder(out)
	status := exitAllow
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			fmt.Fprintf(errw, "policy test: stdin line %d: %v\n", line, err)
			return exitError
		}
		sql, ok := rec["sql"].(string)
		if !ok {
			fmt.Fprintf(errw, "policy test: stdin line %d: no string field \"sql\"\n", line)
			return exitError
		}
		res := t.test(sql)
		rec["verdict"] = res.Verdict
		rec["rule"] = res.Rule
		if res.Message != "" {
			rec["message"] = res.Message
		}
		rec["statements"] = res.Statements
		if err := enc.Encode(rec); err != nil {
			return exitError
		}
		if e := res.exit(); e == exitDeny || (e == exitReview && status == exitAllow) {
			status = e
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(errw, "policy test: stdin:", err)
		return exitError
	}
	return status
}
