// Command gatehouse is the Gatehouse gateway and its operator tools: serve,
// check, policy test, approvals, sessions, audit and version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

// Set by the linker: -ldflags "-X main.version=v0.1.0".
var version = "dev"

// command is one subcommand. run returns the process exit status.
type command struct {
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a command may touch: no globals, so tests run commands
// in-process with their own streams and environment.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	lookupEnv      func(string) (string, bool)
}

func commands() map[string]command {
	return map[string]command{
		"serve":   {"run the gateway", runServe},
		"check":   {"validate a config file", runCheck},
		"policy":  {"dry-run SQL against a config's policy: policy test …", runPolicy},
		"version": {"print version and build info", runVersion},

		"audit":    {"query, verify and export the audit trail: audit query|verify|export …", runAudit},
		"sessions": {"list, show and replay session recordings: sessions list|show|replay …", runSessions},

		"approvals": {"list and decide held statements: approvals list|show|approve|deny …", runApprovals},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, lookupEnv: os.LookupEnv}
	os.Exit(run(ctx, env, os.Args[1:]))
}

func run(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr, cmds)
		return 2
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "gatehouse: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	return cmd.run(ctx, env, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: gatehouse <command> [flags]")
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun gatehouse <command> -h for a command's flags.")
}

func runVersion(_ context.Context, env *cliEnv, _ []string) int {
	fmt.Fprintf(env.stdout, "gatehouse %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(env.stdout, "go: %s\n", bi.GoVersion)
		for _, s := range bi.Settings {
			if strings.HasPrefix(s.Key, "vcs.") || s.Key == "CGO_ENABLED" {
				fmt.Fprintf(env.stdout, "%s: %s\n", s.Key, s.Value)
			}
		}
	}
	return 0
}
