// Package gateway assembles a running Gatehouse from a loaded config: the
// identity verifier, the protocol engines, the API listener and their
// shutdown order. cmd/gatehouse and the integration tests both use it, so
// what the tests drive is what users run.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/api"
	"github.com/gatehouse/gatehouse/internal/approval"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/metrics"
	pgproxy "github.com/gatehouse/gatehouse/internal/proxy/pg"
	"github.com/gatehouse/gatehouse/internal/store"
	"golang.org/x/mod/sumdb/note"
)

// Gateway is one running Gatehouse.
type Gateway struct {
	cfg     *config.Config
	log     *slog.Logger
	metrics *metrics.Metrics
	pg      *pgproxy.Server
	api     *http.Server
	apiLn   net.Listener
	pgAddr  net.Addr
	store   store.Store
	audit   *audit.Log
	// verifier authenticates API callers as the data path does its clients.
	verifier    *identity.Verifier
	cpVerifiers note.Verifiers
	broker      *approval.Broker
	pruner      *pruner   // retention; see retention.go
	export      *exporter // audit.export streams; see export.go
	ready       atomic.Bool
	wg          sync.WaitGroup
	serveErr    chan error
	// stop cancels the context sessions run under; Shutdown calls it only
	// after the drain, so a signal does not cut running statements short.
	stop context.CancelFunc
}

// New builds a gateway from cfg without binding any port.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Gateway, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	m := metrics.New()
	verifier, err := identity.New(ctx, IdentityConfig(cfg), logger.With("component", "identity"))
	if err != nil {
		return nil, fmt.Errorf("identities: %w", err)
	}
	inspection, masker, columns, err := Core(cfg)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := listenerTLS(cfg, logger)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg, logger.With("component", "store"))
	if err != nil {
		return nil, err
	}
	auditLog, cpVerifiers, err := openAudit(ctx, cfg, st, logger.With("component", "audit"), audit.WithObserver(m.AuditObserver()))
	if err != nil {
		st.Close()
		return nil, err
	}
	watchAudit(m, auditLog, st)
	broker, err := newBroker(cfg, st, auditLog, masker, logger.With("component", "approval"))
	if err != nil {
		_ = auditLog.Shutdown(ctx)
		st.Close()
		return nil, err
	}
	pg, err := pgproxy.NewServer(pgproxy.Options{
		Gateway:     cfg,
		TLS:         tlsCfg,
		Verifier:    verifier,
		Inspection:  inspection,
		Masker:      masker,
		ColumnRules: columns,
		Audit:       auditLog,
		Recordings:  st,
		Approvals:   broker,
		Logger:      logger.With("component", "postgres"),
		Metrics:     m,
	})
	if err != nil {
		_ = broker.Shutdown(ctx)
		_ = auditLog.Shutdown(ctx)
		st.Close()
		return nil, err
	}
	g := &Gateway{broker: broker, cfg: cfg, log: logger, metrics: m, pg: pg, store: st, audit: auditLog,
		verifier: verifier, cpVerifiers: cpVerifiers, serveErr: make(chan error, 2)}
	return g, nil
}

// IdentityConfig maps the config's identities onto identity.Config.
func IdentityConfig(cfg *config.Config) identity.Config {
	var ic identity.Config
	ic.MaxSkew = cfg.Identities.MaxClockSkew
	for _, s := range cfg.Identities.Static {
		ic.Static = append(ic.Static, identity.StaticIdentity{Name: s.Name, Token: s.Token.Value(), Groups: s.Groups})
	}
	for _, o := range cfg.Identities.OIDC {
		is := identity.OIDCIssuer{
			Name: o.Name, IssuerURL: o.Issuer, Audience: o.Audience, Algorithms: o.Algorithms,
			NameClaim: o.NameClaim, CAFile: o.CAFile,
		}
		for _, mp := range o.Mappings {
			is.Mappings = append(is.Mappings, identity.ClaimMapping{Claims: mp.Claims, Groups: mp.Groups})
		}
		ic.OIDC = append(ic.OIDC, is)
	}
	return ic
}

func listenerTLS(cfg *config.Config, log *slog.Logger) (*tls.Config, error) {
	t := cfg.Listeners.Postgres.TLS
	var (
		cert tls.Certificate
		fp   string
		err  error
	)
	if t.CertFile != "" {
		cert, fp, err = certs.Load(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		log.Info("TLS certificate loaded", "cert_file", t.CertFile, "sha256_fingerprint", fp)
	} else {
		host, _, _ := net.SplitHostPort(cfg.Listeners.Postgres.Address)
		var created bool
		cert, fp, created, err = certs.LoadOrCreate(cfg.DataDir, []string{host})
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
		log.Info("self-signed TLS certificate in use", "cert_file", cfg.DataDir+"/"+certs.CertFile, "created", created, "sha256_fingerprint", fp)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Start binds the listeners and starts serving in the background. Sessions
// run until Shutdown, whatever happens to ctx afterwards.
func (g *Gateway) Start(ctx context.Context) error {
	ctx, g.stop = context.WithCancel(context.WithoutCancel(ctx))
	addr, err := g.pg.Listen()
	if err != nil {
		return err
	}
	g.pgAddr = addr
	if a := g.cfg.Listeners.API; a != nil {
		ln, err := net.Listen("tcp", a.Address)
		if err != nil {
			return fmt.Errorf("api: listen %s: %w", a.Address, err)
		}
		g.apiLn = ln
		g.api = &http.Server{
			Handler: api.NewHandler(api.Options{
				Metrics: g.metrics, Ready: g.ready.Load, Pprof: g.cfg.API.Pprof,
				Store: g.store, Audit: g.audit, Verifier: g.verifier,
				AuditorGroups:       g.cfg.API.AuditorGroups,
				CheckpointVerifiers: g.cpVerifiers,
				Approvals:           g.broker,
				ApproverGroups:      g.cfg.API.ApproverGroups,
				Logger:              g.log.With("component", "api"),
			}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.serveErr <- fmt.Errorf("api: %w", err)
			}
		}()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.pg.Serve(ctx); err != nil {
			g.serveErr <- fmt.Errorf("postgres: %w", err)
		}
	}()
	// The gateway's own life is audited: start, and the config it runs.
	for _, ev := range []audit.Event{
		{Kind: audit.KindGatewayStart, Extra: map[string]any{"postgres": addr.String()}},
		{Kind: audit.KindConfigLoad, Extra: map[string]any{"path": g.cfg.Path, "sha256": g.cfg.Hash}},
	} {
		if _, err := g.audit.Append(ctx, ev); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	g.pruner = &pruner{audit: g.audit, st: g.store, verifiers: g.cpVerifiers, log: g.log.With("component", "retention"),
		auditRetention: g.cfg.Audit.Retention, exportSinks: g.cfg.Audit.ExportNames(),
		recRetention: g.cfg.Recordings.Retention, every: pruneEvery, now: time.Now}
	g.pruner.start()
	if g.export, err = startExport(g.cfg, g.store, g.metrics, g.log.With("component", "export")); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	g.ready.Store(true)
	attrs := []any{"postgres", addr.String(), "config", g.cfg.Path, "config_sha256", g.cfg.Hash}
	if g.apiLn != nil {
		attrs = append(attrs, "api", g.apiLn.Addr().String())
	}
	g.log.Info("gatehouse started", attrs...)
	return nil
}

// PGAddr is the bound PostgreSQL listener address.
func (g *Gateway) PGAddr() net.Addr { return g.pgAddr }

// APIAddr is the bound API address, or nil.
func (g *Gateway) APIAddr() net.Addr {
	if g.apiLn == nil {
		return nil
	}
	return g.apiLn.Addr()
}

// Metrics exposes the gateway's metrics (tests read them).
func (g *Gateway) Metrics() *metrics.Metrics { return g.metrics }

// ActiveSessions is the number of open PostgreSQL sessions.
func (g *Gateway) ActiveSessions() int { return g.pg.ActiveSessions() }

// Errors delivers a fatal serving error, if one happens.
func (g *Gateway) Errors() <-chan error { return g.serveErr }

// Shutdown stops accepting, drains sessions until ctx is done, and stops.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.ready.Store(false)
	g.log.Info("gatehouse stopping", "active_sessions", g.pg.ActiveSessions())
	// The broker first: it withdraws held statements, whose sessions then
	// get their refusal instead of spending the drain waiting.
	if berr := g.broker.Shutdown(ctx); berr != nil {
		g.log.Error("approvals: shutdown", "err", berr)
	}
	err := g.pg.Shutdown(ctx)
	if g.api != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = g.api.Shutdown(sctx)
		cancel()
	}
	g.wg.Wait()
	g.pruner.shutdown()
	if g.stop != nil {
		g.stop()
	}
	actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, aerr := g.audit.Append(actx, audit.Event{Kind: audit.KindGatewayStop}); aerr != nil {
		g.log.Error("audit: gateway stop not recorded", "err", aerr)
	}
	// Shutdown signs a final checkpoint over everything recorded.
	if aerr := g.audit.Shutdown(actx); aerr != nil {
		g.log.Error("audit: shutdown", "err", aerr)
	}
	// After the stop event and the final checkpoint, so that the last
	// delivery carries them.
	g.export.shutdown(ctx)
	if cerr := g.store.Close(); cerr != nil {
		g.log.Error("store: close", "err", cerr)
	}
	g.log.Info("gatehouse stopped")
	return err
}

// Check builds everything New builds that can fail on a config's content,
// without binding ports or touching the data dir, so `gatehouse check`
// rejects what `serve` would.
func Check(ctx context.Context, cfg *config.Config) error {
	if _, err := identity.New(ctx, IdentityConfig(cfg), slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("%s: identities: %w", cfg.Path, err)
	}
	_, _, _, err := Core(cfg)
	return err
}
