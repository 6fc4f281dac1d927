// Command relayonly runs Gatehouse's PostgreSQL engine with identity, TLS
// and credential injection but without statement analysis, policy, masking
// or audit: the "relay only" row of bench/pgbench.sh, which tells the cost
// of the data path itself apart from the cost of inspecting it. With
// --inspect it adds analysis, policy, masking and session recording, and
// leaves out only the audit log: the "audit off" row that the audit's own
// cost is measured against. It is a benchmark tool, not a way to run
// Gatehouse: the product has no switch that turns inspection or audit off.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/metrics"
	pgproxy "github.com/gatehouse/gatehouse/internal/proxy/pg"
)

func main() {
	path := flag.String("config", "", "config file (the same as gatehouse serve's)")
	listen := flag.String("listen", "", "override listeners.postgres.address")
	plaintext := flag.Bool("plaintext-loopback", false, "let loopback clients skip TLS (measures TLS's share)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until the process stops")
	inspect := flag.Bool("inspect", false, "analyse, judge, mask and record as gatehouse serve does; only the audit log is off")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relayonly:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "relayonly:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*path, *listen, *plaintext, *inspect); err != nil {
		fmt.Fprintln(os.Stderr, "relayonly:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(path, listen string, plaintext, inspect bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		return err
	}
	if listen != "" {
		cfg.Listeners.Postgres.Address = listen
	}
	cfg.Listeners.Postgres.AllowPlaintextLoopback = plaintext
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	v, err := identity.New(ctx, gateway.IdentityConfig(cfg), log)
	if err != nil {
		return err
	}
	cert, _, _, err := certs.LoadOrCreate(cfg.DataDir, nil)
	if err != nil {
		return err
	}
	opts := pgproxy.Options{
		Gateway:  cfg,
		TLS:      &tls.Config{Certificates: []tls.Certificate{cert}},
		Verifier: v,
		Logger:   log,
		Metrics:  metrics.New(),
	}
	if inspect {
		if opts.Inspection, opts.Masker, opts.ColumnRules, err = gateway.Core(cfg); err != nil {
			return err
		}
		st, err := gateway.OpenStore(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer st.Close()
		opts.Recordings = st
	}
	srv, err := pgproxy.NewServer(opts)
	if err != nil {
		return err
	}
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "{\"msg\":\"relayonly started\",\"postgres\":%q}\n", addr.String())
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	return srv.Serve(ctx)
}
