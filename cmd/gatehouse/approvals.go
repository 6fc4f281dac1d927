package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/api"
	"github.com/gatehouse/gatehouse/internal/approval"
)

const approvalsUsage = `usage: gatehouse approvals <command> [--server URL] [--token T]

  list [--status S] [--json]     requests, newest first (approver groups only)
  show ID [--json]               every field of one request
  approve ID [--reason R]        approve (one of the N approvals a request needs)
  deny ID --reason R             deny; the reason is what the held client is told

The gateway is --server or $GATEHOUSE_SERVER; the approver's token is
--token or $GATEHOUSE_TOKEN.`

// runApprovals is the approver's side of held statements, over the REST
// API (there is no offline mode: a decision must reach the gateway whose
// client waits). Exit status: 0 done, 1 the gateway refused or failed (its
// message is printed), 2 usage.
func runApprovals(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, approvalsUsage)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.stdout, approvalsUsage)
		return 0
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet(env, "approvals "+sub)
	server := fs.String("server", "", "gateway API `URL` (default $GATEHOUSE_SERVER)")
	// The token's default is read after parsing, not shown as a flag
	// default: -h would print it.
	token := fs.String("token", "", "bearer `token` of an approver (default $GATEHOUSE_TOKEN)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	var status, reason *string
	wantIDs := 1
	switch sub {
	case "list":
		status = fs.String("status", "", "only requests with this `status`: "+strings.Join(statusList(), ", "))
		wantIDs = 0
	case "show":
	case "approve":
		reason = fs.String("reason", "", "why (optional; recorded in the audit log)")
	case "deny":
		reason = fs.String("reason", "", "why (required; the held client is told)")
	default:
		fmt.Fprintf(env.stderr, "gatehouse approvals: unknown command %q\n\n%s\n", sub, approvalsUsage)
		return 2
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != wantIDs {
		fmt.Fprintf(env.stderr, "gatehouse approvals %s: want %d request ID argument(s), got %d\n", sub, wantIDs, len(pos))
		return 2
	}
	if sub == "deny" && strings.TrimSpace(*reason) == "" {
		fmt.Fprintln(env.stderr, "gatehouse approvals deny: --reason is required: it is what the held client is told")
		return 2
	}
	if status != nil && *status != "" {
		if _, ok := approval.ParseStatus(*status); !ok {
			fmt.Fprintf(env.stderr, "gatehouse approvals list: --status %q is not one of %s\n", *status, strings.Join(statusList(), ", "))
			return 2
		}
	}
	if *server == "" {
		*server = env.getenv("GATEHOUSE_SERVER")
	}
	if *token == "" {
		*token = env.getenv("GATEHOUSE_TOKEN")
	}
	if *server == "" || *token == "" {
		fmt.Fprintln(env.stderr, "gatehouse approvals: need the gateway's API URL and an approver's token: --server URL (or GATEHOUSE_SERVER) and --token T (or GATEHOUSE_TOKEN)")
		return 2
	}
	rem, err := newRemote(env, *server, *token)
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse approvals:", err)
		return 2
	}
	defer rem.close()

	switch sub {
	case "list":
		q := url.Values{}
		if *status != "" {
			q.Set("status", *status)
		}
		var vs []approval.View
		if err := rem.getJSON(ctx, "/api/v1/approvals", q, &vs); err != nil {
			return approvalsFail(env, sub, err)
		}
		if *asJSON {
			if vs == nil {
				vs = []approval.View{}
			}
			return approvalsPrint(env, writeJSON(env.stdout, vs, true))
		}
		return approvalsPrint(env, printApprovalTable(env.stdout, vs))
	case "show":
		var v approval.View
		if err := rem.getJSON(ctx, "/api/v1/approvals/"+url.PathEscape(pos[0]), nil, &v); err != nil {
			return approvalsFail(env, sub, err)
		}
		if *asJSON {
			return approvalsPrint(env, writeJSON(env.stdout, v, true))
		}
		return approvalsPrint(env, printApproval(env.stdout, &v))
	default: // approve, deny
		var v approval.View
		path := "/api/v1/approvals/" + url.PathEscape(pos[0]) + "/" + sub
		if err := approvalsPost(ctx, rem, path, api.DecisionBody{Reason: *reason}, &v); err != nil {
			return approvalsFail(env, sub, err)
		}
		if *asJSON {
			return approvalsPrint(env, writeJSON(env.stdout, v, true))
		}
		line := fmt.Sprintf("%s: %s", v.ID, v.Status)
		if v.Status == approval.Pending {
			line += fmt.Sprintf(" (%d of %d approvals)", approvalsCount(&v), v.Required)
		}
		_, err := fmt.Fprintln(env.stdout, line)
		return approvalsPrint(env, err)
	}
}

func approvalsFail(env *cliEnv, sub string, err error) int {
	fmt.Fprintf(env.stderr, "gatehouse approvals %s: %v\n", sub, err)
	return 1
}

func approvalsPrint(env *cliEnv, err error) int {
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse approvals:", err)
		return 1
	}
	return 0
}

// approvalsPost POSTs body as JSON and decodes a 2xx answer into out;
// other answers become errors carrying the API's message, as remote.get's
// do.
func approvalsPost(ctx context.Context, r *remote, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base.JoinPath(path).String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%s: %s: %s", r.base.Host, resp.Status, printable(e.Error))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// printApprovalTable prints one aligned line per request. Every cell goes
// through printable: statements and names come from agents, and a terminal
// escape sequence in a statement must not repaint what the approver reads.
func printApprovalTable(w io.Writer, vs []approval.View) error {
	if len(vs) == 0 {
		_, err := fmt.Fprintln(w, "no approval requests")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRINCIPAL\tCONNECTION\tROLE\tRULE\tCREATED\tEXPIRES\tSTATEMENT")
	for i := range vs {
		v := &vs[i]
		st := string(v.Status)
		if v.Status == approval.Pending && v.Required > 1 {
			st += fmt.Sprintf(" %d/%d", approvalsCount(v), v.Required)
		}
		stmt := v.Statement
		if v.Kind == approval.KindSession {
			stmt = "(session grant for " + v.GrantDuration + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(v.ID), st, cell(v.Principal), cell(v.Connection),
			cell(v.Role), cell(v.Rule), approvalsTime(v.Created), approvalsTime(v.Expires), truncate(cell(stmt), 60))
	}
	return tw.Flush()
}

// printApproval prints every field of one request.
func printApproval(w io.Writer, v *approval.View) error {
	var b strings.Builder
	line := func(k, val string) { fmt.Fprintf(&b, "%-12s %s\n", k+":", val) }
	line("id", printable(v.ID))
	line("status", string(v.Status))
	line("kind", printable(v.Kind))
	who := printable(v.Principal)
	var parts []string
	if v.Identity.Issuer != "" {
		parts = append(parts, "issuer "+printable(v.Identity.Issuer))
	}
	if v.Identity.Subject != "" {
		parts = append(parts, "subject "+printable(v.Identity.Subject))
	}
	if len(v.Identity.Groups) > 0 {
		parts = append(parts, "groups "+printable(strings.Join(v.Identity.Groups, ", ")))
	}
	if len(parts) > 0 {
		who += " (" + strings.Join(parts, "; ") + ")"
	}
	line("principal", who)
	line("connection", printable(v.Connection))
	line("role", orDash(v.Role))
	line("session", orDash(v.SessionID))
	line("rule", orDash(v.Rule))
	line("reviewers", orDash(strings.Join(v.Reviewers, ", ")))
	line("approvals", fmt.Sprintf("%d of %d needed", approvalsCount(v), v.Required))
	for _, d := range v.Approvals {
		fmt.Fprintf(&b, "  - %s\n", decisionText(&d))
	}
	if v.Kind == approval.KindSession {
		line("grant", printable(v.GrantDuration))
	}
	line("created", approvalsTime(v.Created))
	line("expires", approvalsTime(v.Expires))
	if v.Decided != nil {
		line("decided", decisionText(v.Decided))
	}
	line("holder", orDash(v.Holder))
	line("param hash", orDash(v.ParamHash))
	if v.Statement != "" {
		b.WriteString("statement:\n")
		for _, l := range strings.Split(v.Statement, "\n") {
			b.WriteString("  " + printable(l) + "\n")
		}
	}
	if v.Status == approval.Pending {
		line("approve", v.ApproveCommand)
		line("deny", approval.DenyCommand(v.ID))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func decisionText(d *approval.Decision) string {
	verb := "denied"
	switch {
	case d.Approve:
		verb = "approved"
	case d.By == approval.SystemDecider:
		verb = "ended"
	}
	s := verb + " by " + printable(d.By)
	if len(d.Groups) > 0 {
		s += " (" + printable(strings.Join(d.Groups, ", ")) + ")"
	}
	s += " at " + approvalsTime(d.At)
	if d.Reason != "" {
		s += ": " + printable(d.Reason)
	}
	return s
}

// approvalsCount counts the distinct approvals, as the broker does.
func approvalsCount(v *approval.View) int {
	seen := map[string]bool{}
	for _, d := range v.Approvals {
		if d.Approve {
			seen[strings.ToLower(d.By)] = true
		}
	}
	return len(seen)
}

func approvalsTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

func statusList() []string {
	var out []string
	for _, s := range approval.Statuses {
		out = append(out, string(s))
	}
	return out
}
