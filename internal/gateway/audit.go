package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
	"golang.org/x/mod/sumdb/note"
)

// OpenStore opens the store the config names. The embedded SQLite store
// gets its audit appends through a journal (store.Journal) that this process
// holds exclusively; logger receives the journal's operational messages.
func OpenStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (store.Store, error) {
	if cfg.Store.Driver == "postgres" {
		st, err := store.OpenPostgres(ctx, cfg.Store.DSN.Value())
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return st, nil
	}
	st, err := store.OpenSQLite(cfg.Store.Path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	opts := store.JournalOptions{Logger: logger}
	if cfg.Audit.Durability == config.DurabilityWrite {
		opts.SyncInterval = WriteSyncInterval
	}
	j, err := store.OpenJournal(ctx, st, JournalPath(cfg), opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	return j, nil
}

// WriteSyncInterval bounds how long an event is exposed to a power loss
// with audit.durability: write.
const WriteSyncInterval = 10 * time.Millisecond

// JournalPath is the embedded store's audit journal file.
func JournalPath(cfg *config.Config) string { return cfg.Store.Path + ".audit-journal" }

// SigningKeyPath is the audit checkpoint signing key's file.
func SigningKeyPath(cfg *config.Config) string {
	if cfg.Audit.SigningKeyFile != "" {
		return cfg.Audit.SigningKeyFile
	}
	return filepath.Join(cfg.DataDir, "audit.key")
}

// openAudit opens the audit log on st with the config's signing key and
// checkpoint sinks.
func openAudit(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger, extra ...audit.Option) (*audit.Log, note.Verifiers, error) {
	signer, vkey, err := audit.LoadOrCreateSigner(SigningKeyPath(cfg), "")
	if err != nil {
		return nil, nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, fmt.Errorf("audit verifier key: %w", err)
	}
	opts := append([]audit.Option{audit.WithCheckpointInterval(cfg.Audit.CheckpointInterval)}, extra...)
	var sinks []audit.CheckpointSink
	if cfg.Audit.CheckpointFile != "" {
		sinks = append(sinks, &audit.FileSink{Path: cfg.Audit.CheckpointFile})
	}
	if cfg.Audit.CheckpointWebhook != "" {
		sinks = append(sinks, &audit.WebhookSink{URL: cfg.Audit.CheckpointWebhook})
	}
	if len(sinks) > 0 {
		opts = append(opts, audit.WithSinks(sinks...))
	}
	l, err := audit.Open(ctx, st, signer, func() time.Time { return time.Now().UTC() }, log, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	log.Info("audit log open", "store", cfg.Store.Driver, "verifier_key", vkey)
	return l, note.VerifierList(verifier), nil
}

// watchAudit exports the audit log's counters and, on the embedded store,
// whether its index keeps up with the journal.
func watchAudit(m *metrics.Metrics, l *audit.Log, st store.Store) {
	c := metrics.AuditCounters{
		Commits:   func() int64 { return l.Stats().Batches },
		Events:    func() int64 { return l.Stats().Events },
		Restamped: func() int64 { return l.Stats().Restamped },
	}
	if j, ok := st.(*store.Journal); ok {
		c.Unindexed = func() int64 { return j.Stats().Unindexed }
		c.IndexWaits = func() int64 { return j.Stats().IndexWaits }
		c.IndexWaitSeconds = func() float64 { return j.Stats().IndexWaitTime.Seconds() }
	}
	m.WatchAudit(c)
}
