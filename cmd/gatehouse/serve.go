package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

func loadConfig(env *cliEnv, path string) (*config.Config, error) {
	if path == "" {
		return nil, errors.New("--config is required")
	}
	return config.Load(path, config.Options{LookupEnv: env.lookupEnv})
}

func newLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func runCheck(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(env, *path)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	if err := gateway.Check(ctx, cfg); err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(env.stderr, "warning:", w)
	}
	fmt.Fprintf(env.stdout, "%s: ok (%d connections, %d static identities, %d OIDC issuers, %d policy rules)\n",
		cfg.Path, len(cfg.Connections), len(cfg.Identities.Static), len(cfg.Identities.OIDC), len(cfg.Policy.Rules))
	return 0
}

func runServe(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(env, *path)
	if err != nil {
		fmt.Fprintln(env.stderr, err)
		return 1
	}
	log := newLogger(env.stderr, cfg)
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "warning", w)
	}
	gw, err := gateway.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := gw.Start(ctx); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	status := 0
	select {
	case <-ctx.Done():
		log.Info("signal received, draining sessions", "drain_timeout", cfg.Shutdown.DrainTimeout.String())
	case err := <-gw.Errors():
		log.Error("serving failed", "err", err)
		status = 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.DrainTimeout)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		log.Warn("sessions closed at drain timeout", "err", err)
	}
	return status
}
