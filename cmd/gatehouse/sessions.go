package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/api"
)

const sessionsUsage = `usage:
  gatehouse sessions list   [--config F | --server URL --token T] [--since T --until T --principal P --connection C --limit N] [--json]
  gatehouse sessions show   ID [--config F | --server URL --token T] [--json]
  gatehouse sessions replay ID [--config F | --server URL --token T] [--unaligned] [--null S]

show and replay verify the recording: each chunk against its stored digest
and, once the session has ended, against the digests in its session.end
audit event. Every read is itself recorded in the audit log (audit.read).
Exit status: 0 ok, 1 error or a damaged recording, 2 usage.
`

func runSessions(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(env.stderr, sessionsUsage)
		return 2
	}
	switch args[0] {
	case "list":
		return sessionsList(ctx, env, args[1:])
	case "show":
		return sessionsShow(ctx, env, args[1:])
	case "replay":
		return sessionsReplay(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.stdout, sessionsUsage)
		return 0
	}
	fmt.Fprintf(env.stderr, "gatehouse sessions: unknown subcommand %q\n\n%s", args[0], sessionsUsage)
	return 2
}

func sessionsList(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "sessions list")
	var cf clientFlags
	cf.register(fs)
	filters := filterFlags(fs, []string{"since", "until", "principal", "connection", "limit"})
	asJSON := fs.Bool("json", false, "print a JSON array of sessions")
	src, pos, status := start(ctx, env, fs, &cf, args, nil)
	if src == nil {
		return status
	}
	if len(pos) > 0 {
		fmt.Fprintf(env.stderr, "gatehouse sessions list: unexpected argument %q\n", pos[0])
		return closeTrail(env, src, 2)
	}
	ss, err := src.sessions(ctx, filters())
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return closeTrail(env, src, 1)
	}
	if *asJSON {
		if ss == nil {
			ss = []api.Session{}
		}
		writeJSON(env.stdout, ss, true)
		return closeTrail(env, src, 0)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tDURATION\tPRINCIPAL\tCONNECTION\tROLE\tBYTES\tNOTE")
	for _, s := range ss {
		dur, note := "running", ""
		if s.Ended != nil {
			dur = s.Ended.Sub(s.Started).Round(time.Millisecond).String()
		}
		if s.Truncated {
			note = "truncated"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cell(s.ID), s.Started.UTC().Format("2006-01-02T15:04:05Z"), dur,
			cell(s.Principal), cell(s.Connection), cell(s.Role), s.Bytes, note)
	}
	tw.Flush()
	fmt.Fprintf(env.stderr, "%d sessions\n", len(ss))
	return closeTrail(env, src, 0)
}

// oneID parses a subcommand that takes exactly one session ID.
func oneID(ctx context.Context, env *cliEnv, fs *flag.FlagSet, cf *clientFlags, args []string) (trailSource, string, int) {
	src, pos, status := start(ctx, env, fs, cf, args, nil)
	if src == nil {
		return nil, "", status
	}
	if len(pos) != 1 {
		fmt.Fprintf(env.stderr, "gatehouse %s: want one session ID, got %d arguments\n", fs.Name(), len(pos))
		return nil, "", closeTrail(env, src, 2)
	}
	return src, pos[0], 0
}

func sessionsShow(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "sessions show")
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the session as JSON")
	src, id, status := oneID(ctx, env, fs, &cf, args)
	if src == nil {
		return status
	}
	d, err := src.session(ctx, id)
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return closeTrail(env, src, 1)
	}
	if !d.Intact {
		status = 1
	}
	if *asJSON {
		writeJSON(env.stdout, d, true)
		return closeTrail(env, src, status)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("session", "%s", printable(d.ID))
	row("principal", "%s", printable(d.Principal))
	row("connection", "%s (role %s)", printable(d.Connection), printable(d.Role))
	if m := d.Meta; m != nil {
		if m.Database != "" {
			row("database", "%s", printable(m.Database))
		}
		if m.Source != "" {
			row("source", "%s", printable(m.Source))
		}
	}
	row("started", "%s", d.Started.UTC().Format(time.RFC3339Nano))
	if d.Ended != nil {
		row("ended", "%s (%s)", d.Ended.UTC().Format(time.RFC3339Nano), d.Ended.Sub(d.Started).Round(time.Millisecond))
	} else {
		row("ended", "not yet (running, or the gateway stopped without ending it)")
	}
	row("recorded", "%d statements, %d rows, %d errors; %d bytes in %d chunks", d.Statements, d.Rows, d.Errors, d.Bytes, d.Chunks)
	if d.Truncated {
		row("truncated", "yes: the recording reached its size cap; later traffic was not recorded")
	}
	if d.AuditIndex != nil {
		row("audit", "chunk digests checked against session.end event %d (audit verify checks that event)", *d.AuditIndex)
	} else {
		row("audit", "no session.end event yet: chunks checked against their stored digests only")
	}
	if d.Intact {
		row("integrity", "intact")
	} else {
		row("integrity", "DAMAGED (%d problem(s))", len(d.Problems))
		for _, p := range d.Problems {
			row("", "chunk %d: %s", p.Chunk, printable(p.Message))
		}
	}
	tw.Flush()
	return closeTrail(env, src, status)
}

func sessionsReplay(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "sessions replay")
	var cf clientFlags
	cf.register(fs)
	unaligned := fs.Bool("unaligned", false, "rows as value|value (psql -A) instead of aligned columns")
	null := fs.String("null", "", "how to show SQL NULL (psql's \\pset null)")
	src, id, status := oneID(ctx, env, fs, &cf, args)
	if src == nil {
		return status
	}
	w := bufio.NewWriter(env.stdout)
	problems, err := src.replay(ctx, w, id, *unaligned, *null)
	w.Flush()
	if err != nil {
		fmt.Fprintln(env.stderr, "gatehouse:", err)
		return closeTrail(env, src, 1)
	}
	if problems > 0 {
		fmt.Fprintf(env.stderr, "gatehouse: recording %s is damaged: %d problem(s), marked !! DAMAGED above\n", printable(id), problems)
		return closeTrail(env, src, 1)
	}
	return closeTrail(env, src, 0)
}
