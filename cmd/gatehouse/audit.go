package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/api"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

const auditUsage = `usage:
  gatehouse audit query  [--config F | --server URL --token T] [filters] [--json]
  gatehouse audit verify [--config F [--key FILE] | --server URL --token T] [--json]
  gatehouse audit export [--config F | --server URL --token T] [--format jsonl|ocsf] [--out FILE] [filters]
  gatehouse audit prune  --config F [--key FILE] [--before TIME] [--dry-run]

filters: --since T --until T (RFC 3339, 2006-01-02, or a duration ago such as 24h),
         --principal --connection --session --decision --outcome --table --kind,
         --from INDEX --limit N

Every read is itself recorded in the audit log (audit.read). prune deletes
events older than TIME (default: audit.retention ago) up to a signed
checkpoint, records an audit.pruned event, and keeps the log verifiable.
Exit status: 0 ok, 1 error or (verify) any finding, 2 usage.
`

func runAudit(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "query":
		return auditQuery(ctx, env, args[1:])
	case "verify":
		return auditVerify(ctx, env, args[1:])
	case "export":
		return auditExport(ctx, env, args[1:])
	case "prune":
		return auditPrune(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.stdout, auditUsage)
		return 0
	}
	fmt.Fprintf(env.stderr, "gatehouse audit: unknown subcommand %q\n\n%s", args[0], auditUsage)
	return 2
}

// filterFlags registers api.EventFilters as flags and returns the values
// that were set, once parsed, as the API's query parameters: offline and
// online then filter with the same code.
func filterFlags(fs *flag.FlagSet, names []string) func() url.Values {
	vals := make(map[string]*string, len(names))
	for _, n := range names {
		vals[n] = fs.String(n, "", "filter: "+n)
	}
	return func() url.Values {
		v := url.Values{}
		for n, p := range vals {
			if *p != "" {
				v.Set(n, *p)
			}
		}
		return v
	}
}

// start parses a subcommand's flags and opens its trail source; when src
// is nil, status is the exit status. key, if not nil, is the flag naming the
// checkpoint verifier key.
func start(ctx context.Context, env *cliEnv, fs *flag.FlagSet, cf *clientFlags, args []string, key *string) (src trailSource, pos []string, status int) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, 2
	}
	if err := cf.resolve(env); err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return nil, nil, 2
	}
	keyFile := ""
	if key != nil {
		keyFile = *key
	}
	src, err = openTrail(ctx, env, cf, keyFile)
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return nil, nil, 1
	}
	return src, pos, 0
}

func closeTrail(env *cliEnv, src trailSource, status int) int {
	if err := src.close(); err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return max(status, 1)
	}
	return status
}

func newFlagSet(env *cliEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

func auditQuery(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "audit query")
	var cf clientFlags
	cf.register(fs)
	filters := filterFlags(fs, api.EventFilters)
	asJSON := fs.Bool("json", false, "print a JSON array of {index, hash, event} with the leaf bytes as stored")
	src, pos, status := start(ctx, env, fs, &cf, args, nil)
	if src == nil {
		return status
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "gatehouse audit query: unexpected argument %q\n", pos[0])
		return closeTrail(env, src, 2)
	}
	lines, err := src.events(ctx, filters())
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return closeTrail(env, src, 1)
	}
	if *asJSON {
		if lines == nil {
			lines = []audit.ExportLine{}
		}
		if err := writeJSON(env.stdout, lines, false); err != nil {
			return closeTrail(env, src, 1)
		}
		return closeTrail(env, src, 0)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tTIME\tKIND\tPRINCIPAL\tCONNECTION\tSESSION\tDECISION\tOUTCOME\tDETAIL")
	for _, l := range lines {
		ev, err := audit.ParseEvent(l.Event)
		if err != nil {
			fmt.Fprintf(tw, "%d\t\t(unreadable event: %v)\n", l.Index, err)
			continue
		}
		principal := ""
		if ev.Principal != nil {
			principal = ev.Principal.Name
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Index, ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
			ev.Kind, cell(principal), cell(ev.Connection), cell(ev.SessionID), cell(ev.Decision), cell(outcome(ev.Outcome)), cell(detail(&ev)))
	}
	tw.Flush()
	fmt.Fprintf(env.stderr, "%d events\n", len(lines))
	return closeTrail(env, src, 0)
}

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return truncate(printable(s), 80)
}

func outcome(o *audit.Outcome) string {
	switch {
	case o == nil:
		return ""
	case o.SQLState != "" && !o.Success():
		return "ERROR " + o.SQLState
	case o.CommandTag != "":
		return o.CommandTag
	}
	return "ok"
}

// detail is the most telling text of an event for one table cell.
func detail(ev *audit.Event) string {
	switch {
	case ev.Statement != "":
		return ev.Statement
	case ev.Outcome != nil && ev.Outcome.Message != "":
		return ev.Outcome.Message
	case ev.Reason != "":
		return ev.Reason
	case ev.Extra["operation"] != nil:
		return fmt.Sprint(ev.Extra["operation"])
	}
	return ""
}

func auditVerify(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "audit verify")
	var cf clientFlags
	cf.register(fs)
	key := fs.String("key", "", "checkpoint verifier key `file` (offline; default: the signing key's .pub next to it)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	src, pos, status := start(ctx, env, fs, &cf, args, key)
	if src == nil {
		return status
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "gatehouse audit verify: unexpected argument %q\n", pos[0])
		return closeTrail(env, src, 2)
	}
	res, err := src.verify(ctx)
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return closeTrail(env, src, 1)
	}
	status = 0
	if !res.OK {
		status = 1
	}
	if *asJSON {
		writeJSON(env.stdout, res, true)
		return closeTrail(env, src, status)
	}
	w := env.stdout
	fmt.Fprintf(w, "audit log: %d events, root %s\n", res.TreeSize, res.Root)
	fmt.Fprintf(w, "checkpoints: %d stored, %d verified", res.Checkpoints, res.VerifiedCheckpoints)
	if res.LatestVerified > 0 {
		fmt.Fprintf(w, "; the latest verified covers %d events", res.LatestVerified)
	}
	if res.OK && res.Unsigned > 0 {
		fmt.Fprintf(w, "; %d later events are intact but not yet under a signed checkpoint", res.Unsigned)
	}
	fmt.Fprintln(w)
	if res.OK {
		fmt.Fprintln(w, "ok")
		return closeTrail(env, src, status)
	}
	fmt.Fprintf(w, "FAILED: %d finding(s)\n", len(res.Findings))
	if res.FirstBad >= 0 {
		fmt.Fprintf(w, "first bad event index: %d\n", res.FirstBad)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tINDEX\tMESSAGE")
	for _, f := range res.Findings {
		idx := "-"
		if f.Index >= 0 {
			idx = fmt.Sprint(f.Index)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Kind, idx, printable(f.Message))
	}
	tw.Flush()
	return closeTrail(env, src, status)
}

func auditExport(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "audit export")
	var cf clientFlags
	cf.register(fs)
	filters := filterFlags(fs, api.EventFilters)
	format := fs.String("format", "jsonl", "jsonl (leaf bytes with index and hash) or ocsf (OCSF 1.1 Datastore Activity)")
	out := fs.String("out", "", "write to `file` instead of standard output (created 0600; an existing file is refused)")
	src, pos, status := start(ctx, env, fs, &cf, args, nil)
	if src == nil {
		return status
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "gatehouse audit export: unexpected argument %q\n", pos[0])
		return closeTrail(env, src, 2)
	}
	if *format != "jsonl" && *format != "ocsf" {
		fmt.Fprintf(env.stderr, "gatehouse audit export: --format %q is not jsonl or ocsf\n", *format)
		return closeTrail(env, src, 2)
	}
	var w io.Writer = env.stdout
	var f *os.File
	if *out != "" {
		// The trail is sensitive: owner-only, and never over another file.
		var err error
		if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			fmt.Fprintln(env.stderr, "gatehouse:", err)
			return closeTrail(env, src, 1)
		}
		w = f
	}
	began := time.Now()
	err := src.export(ctx, w, *format, filters())
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(*out) // a partial export must not pass for a whole one
		}
	}
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return closeTrail(env, src, 1)
	}
	if f != nil {
		fmt.Fprintf(env.stderr, "exported to %s in %s\n", *out, time.Since(began).Round(time.Millisecond))
	}
	return closeTrail(env, src, 0)
}

// auditPrune prunes the audit log offline, on the store --config names:
// what a gateway with audit.retention does every hour.
func auditPrune(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "audit prune")
	cfgPath := fs.String("config", "", "config `file` naming the store (required)")
	key := fs.String("key", "", "checkpoint verifier key `file` (default: the signing key's .pub next to it)")
	beforeFlag := fs.String("before", "", "prune events older than `TIME` (RFC 3339, 2006-01-02, or a duration ago such as 8784h; default: audit.retention ago)")
	dryRun := fs.Bool("dry-run", false, "print what would be pruned and change nothing")
	ignoreExport := fs.Bool("ignore-export", false, "also prune events an audit.export sink has not accepted yet (it will never get them)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "gatehouse audit prune: unexpected argument %q\n", pos[0])
		return 2
	}
	cfg, err := loadConfig(env, *cfgPath)
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return 2
	}
	now := time.Now()
	var before time.Time
	switch {
	case *beforeFlag != "":
		if before, err = api.ParseTime(*beforeFlag, now); err != nil {
			fmt.Fprintln(env.stderr, "gatehouse: --before:", err)
			return 2
		}
	case cfg.Audit.Retention > 0:
		before = now.Add(-cfg.Audit.Retention)
	default:
		fmt.Fprintln(env.stderr, "gatehouse audit prune: audit.retention is not set (events are kept forever): pass --before TIME")
		return 2
	}
	keyPath := gateway.SigningKeyPath(cfg)
	if *key == "" {
		*key = keyPath + ".pub"
	}
	vb, err := os.ReadFile(*key)
	if err != nil {
		fmt.Fprintf(env.stderr, "gatehouse: no checkpoint verifier key: %v (pass --key FILE)\n", err)
		return 1
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vb)))
	if err != nil {
		fmt.Fprintf(env.stderr, "gatehouse: verifier key %s: %v\n", *key, err)
		return 1
	}
	vs := note.VerifierList(v)
	st, err := storeFor(ctx, cfg)
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return 1
	}
	defer st.Close()
	limit, sink := audit.NoPruneLimit, ""
	if !*ignoreExport {
		if limit, sink, err = audit.ExportHold(ctx, st, cfg.Audit.ExportNames()); err != nil {
			fmt.Fprintln(env.stderr, "gatehouse:", err)
			return 1
		}
	}
	var res audit.PruneResult
	if *dryRun {
		res, err = audit.PlanPrune(ctx, st, vs, before, limit)
	} else {
		// The prune is recorded in the log, which takes the signing key;
		// it is only read, never created.
		var (
			b   []byte
			sgn note.Signer
			l   *audit.Log
		)
		if b, err = os.ReadFile(keyPath); err == nil {
			sgn, _, err = audit.ParseSigner(b)
		}
		if err == nil {
			l, err = audit.Open(ctx, st, sgn, nil, nil)
		}
		if err != nil {
			fmt.Fprintln(env.stderr, "gatehouse: the audit log cannot be opened to record the prune:", err)
			return 1
		}
		res, err = l.Prune(ctx, vs, before, limit)
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if serr := l.Shutdown(sctx); err == nil && serr != nil {
			err = serr
		}
		cancel()
	}
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return 1
	}
	verb := "pruned"
	if *dryRun {
		verb = "would prune"
	}
	if res.HeldBack {
		fmt.Fprintf(env.stdout, "keeping events from index %d: export sink %s has not accepted them (--ignore-export prunes them anyway)\n", limit, sink)
	}
	if res.Events() == 0 {
		fmt.Fprintf(env.stdout, "nothing to prune: no signed checkpoint beyond index %d covers only events older than %s\n",
			res.From, before.UTC().Format(time.RFC3339))
		return 0
	}
	fmt.Fprintf(env.stdout, "%s events %d to %d (%d events, the newest at %s), older than %s\n",
		verb, res.From, res.Below-1, res.Events(), res.Newest.UTC().Format(time.RFC3339Nano), before.UTC().Format(time.RFC3339))
	fmt.Fprintf(env.stdout, "bridged by the signed checkpoint of size %d, root %s\n", res.Checkpoint.Size, res.Root)
	return 0
}
