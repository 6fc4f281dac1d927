package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/identity/identitytest"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// Secrets of the reference deployment in tests. The log-leak check looks for
// each of them in everything the gateway logged.
const (
	agentToken     = "agent-token-7f3a9c1e5b"
	approverToken  = "approver-token-2d8e6f4a1c"
	auditorToken   = "auditor-token-9b5c3e7d2f"
	readerPassword = "reader-pw-4e1f8a2b6c"
	writerPassword = "writer-pw-8c2d5f9e3a"
)

var rolesOnce sync.Once

// shopDB creates a fresh database with examples/shop.sql on the shared
// cluster and returns its name.
func shopDB(t *testing.T, pg *pgtest.Cluster) string {
	t.Helper()
	rolesOnce.Do(func() {
		// Cluster-wide roles outlive any one test: the shared cluster is
		// thrown away with the test binary.
		pg.Exec(t, fmt.Sprintf("CREATE ROLE shop_reader LOGIN PASSWORD '%s'; CREATE ROLE shop_writer LOGIN PASSWORD '%s'", readerPassword, writerPassword))
	})
	db := pg.NewDatabase(t)
	schema, err := os.ReadFile("../examples/shop.sql")
	if err != nil {
		t.Fatal(err)
	}
	pg.ExecIn(t, db, string(schema))
	return db
}

// harness is one gateway in front of one shop database.
type harness struct {
	t       *testing.T
	pg      *pgtest.Cluster
	db      string
	cfg     *config.Config
	gw      *gateway.Gateway
	oidc    *identitytest.Issuer
	logs    *syncBuffer
	pgAddr  string
	stopped sync.Once
	cancel  context.CancelFunc
}

// stop shuts the gateway down (draining, final audit checkpoint); the test
// cleanup calls it too.
func (h *harness) stop() {
	h.stopped.Do(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = h.gw.Shutdown(sctx)
		h.cancel()
	})
}

func sharedPG(t *testing.T) *pgtest.Cluster { return pgtest.Shared(t) }

// testutilCounter sums a counter family of the gateway's metrics.
func testutilCounter(t *testing.T, h *harness, name string) float64 {
	mfs, err := h.gw.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

type harnessOpt func(env map[string]string, cfg *config.Config)

// withCfg edits the loaded config before the gateway is built.
func withCfg(f func(*config.Config)) harnessOpt {
	return func(_ map[string]string, c *config.Config) {
		if c != nil {
			f(c)
		}
	}
}

// withPostgresStore keeps the gateway's store in database db of pgc, as
// replicas share one, instead of the embedded SQLite file.
func withPostgresStore(pgc *pgtest.Cluster, db string) harnessOpt {
	return withCfg(func(c *config.Config) {
		c.Store.Driver = "postgres"
		c.Store.DSN = config.NewSecret(pgc.DSN(db))
	})
}

// withEnv sets a variable of the reference deployment before loading.
func withEnv(k, v string) harnessOpt {
	return func(env map[string]string, c *config.Config) {
		if c == nil {
			env[k] = v
		}
	}
}

// baseEnv is the reference deployment's environment; pg may be nil for
// commands that never reach the target.
func baseEnv(t *testing.T, pg *pgtest.Cluster, issuer string) map[string]string {
	addr := "127.0.0.1:1"
	if pg != nil {
		addr = pg.Addr()
	}
	if issuer == "" {
		issuer = "https://issuer.invalid"
	}
	return map[string]string{
		"GATEHOUSE_DATA":       t.TempDir(),
		"GATEHOUSE_PG_LISTEN":  "127.0.0.1:0",
		"GATEHOUSE_API_LISTEN": "127.0.0.1:0",
		"SHOP_PG_ADDR":         addr,
		"SHOP_READER_PASSWORD": readerPassword,
		"SHOP_WRITER_PASSWORD": writerPassword,
		"AGENT_TOKEN":          agentToken,
		"APPROVER_TOKEN":       approverToken,
		"AUDITOR_TOKEN":        auditorToken,
		"OIDC_ISSUER":          issuer,
	}
}

// newHarness starts a gateway on examples/pci.yaml in front of a fresh shop
// database and stops it (checking the logs for secrets) when t ends.
func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarnessOn(t, pgtest.Shared(t), opts...)
}

// newHarnessOn is newHarness on a given cluster, whose shop roles exist.
func newHarnessOn(t *testing.T, pg *pgtest.Cluster, opts ...harnessOpt) *harness {
	t.Helper()
	var db string
	if pg == pgtest.Shared(t) {
		db = shopDB(t, pg)
	} else {
		db = pg.NewDatabase(t)
		schema, err := os.ReadFile("../examples/shop.sql")
		if err != nil {
			t.Fatal(err)
		}
		pg.ExecIn(t, db, string(schema))
	}
	h := &harness{t: t, pg: pg, db: db, oidc: identitytest.NewIssuer(t), logs: &syncBuffer{}}
	env := baseEnv(t, pg, h.oidc.URL())
	for _, o := range opts {
		o(env, nil)
	}
	cfg, err := config.Load("../examples/pci.yaml", config.Options{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Connections[0].Database = h.db
	cfg.Log.Level = "debug"
	for _, o := range opts {
		o(env, cfg)
	}
	h.cfg = cfg
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := gateway.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	h.gw = gw
	h.cancel = cancel
	h.pgAddr = gw.PGAddr().String()
	t.Cleanup(func() {
		h.stop()
		h.assertNoSecretsLogged()
		if t.Failed() {
			t.Logf("gateway log:\n%s", h.logs.String())
		}
	})
	return h
}

func (h *harness) assertNoSecretsLogged() {
	logs := h.logs.String()
	for _, s := range []string{agentToken, approverToken, auditorToken, readerPassword, writerPassword} {
		if strings.Contains(logs, s) {
			h.t.Errorf("the gateway logged a secret (%s…)", s[:6])
		}
	}
}

func (h *harness) port() string {
	_, p, _ := strings.Cut(h.pgAddr, ":")
	return p
}

// connString is a libpq connection string to the gateway.
func (h *harness) connString(role, token, sslmode string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%s dbname=shop user=%s password=%s sslmode=%s connect_timeout=10", h.port(), role, token, sslmode)
}

// connect opens a pgx connection through the gateway.
func (h *harness) connect(role, token string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return pgx.Connect(ctx, h.connString(role, token, "require"))
}

func (h *harness) mustConnect(role, token string) *pgx.Conn {
	h.t.Helper()
	c, err := h.connect(role, token)
	if err != nil {
		h.t.Fatalf("connect as %s: %v", role, err)
	}
	h.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// psql runs psql against the gateway with the token in PGPASSWORD, the way
// an agent would, and returns stdout, stderr and the exit error.
func (h *harness) psql(role, token string, args ...string) (string, string, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := fmt.Sprintf("host=127.0.0.1 port=%s dbname=shop user=%s sslmode=require connect_timeout=10", h.port(), role)
	cmd := exec.CommandContext(ctx, "psql", append([]string{conn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, args...)...)
	cmd.Env = append(cleanEnv(), "PGPASSWORD="+token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// direct opens a superuser connection to the shop database, bypassing the
// gateway, to check what really happened on the target.
func (h *harness) direct() *pgx.Conn {
	h.t.Helper()
	c, err := pgx.Connect(context.Background(), h.pg.DSN(h.db))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (h *harness) scalar(sql string) string {
	h.t.Helper()
	var s string
	if err := h.direct().QueryRow(context.Background(), sql).Scan(&s); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// cleanEnv is the process environment without libpq variables that would
// change where a client connects.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ = filepath.Join
