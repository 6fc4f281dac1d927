package gateway

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/record"
	"github.com/gatehouse/gatehouse/internal/store"
)

// pruneEvery is how often the retention pruner runs (and once at start).
const pruneEvery = time.Hour

// pruner deletes audit events and recordings older than their retention
// (PCI DSS 10.5.1). It runs in one goroutine that its owner stops with
// shutdown.
type pruner struct {
	audit          *audit.Log
	st             store.Store
	verifiers      note.Verifiers
	log            *slog.Logger
	auditRetention time.Duration // 0: keep forever
	// exportSinks are the audit.export sinks: events one of them has not
	// accepted are kept past their retention, so that it still gets them.
	exportSinks  []string
	recRetention time.Duration // 0: keep forever
	every        time.Duration
	now          func() time.Time

	cancel context.CancelFunc // ends the loop and a prune in progress
	done   chan struct{}      // closed when the loop has returned
}

// start runs the pruner: once now, then every p.every. It does nothing
// (and shutdown returns at once) when no retention is set.
func (p *pruner) start() {
	p.done = make(chan struct{})
	if p.auditRetention <= 0 && p.recRetention <= 0 {
		close(p.done)
		return
	}
	var ctx context.Context
	ctx, p.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			p.runOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// shutdown stops the pruner and waits for it. A prune in progress is
// cancelled, so the wait is short; not waiting would let the pruner append
// to an audit log that is shutting down.
func (p *pruner) shutdown() {
	if p == nil || p.done == nil {
		return
	}
	if p.cancel != nil {
		p.cancel()
	}
	<-p.done
}

// maxPrunedIDs caps the session IDs a recordings.pruned event lists.
const maxPrunedIDs = 1000

// runOnce prunes what is due. Failures are logged: the next run retries.
func (p *pruner) runOnce(ctx context.Context) {
	now := p.now()
	if p.auditRetention > 0 {
		p.pruneAudit(ctx, now.Add(-p.auditRetention))
	}
	if p.recRetention > 0 {
		cutoff := now.Add(-p.recRetention)
		ids, err := record.Prune(ctx, p.st, cutoff)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("recording retention: prune failed", "err", err)
			}
			return
		}
		if len(ids) == 0 {
			return
		}
		listed := ids[:min(len(ids), maxPrunedIDs)]
		ev := audit.Event{Kind: audit.KindRecordingsPruned, Reason: "retention", Extra: map[string]any{
			"count": len(ids), "older_than": cutoff.UTC().Format(time.RFC3339Nano), "sessions": listed,
		}}
		if _, err := p.audit.Append(ctx, ev); err != nil {
			p.log.Error("recording retention: pruning not recorded", "err", err, "count", len(ids))
		}
		p.log.Info("recording retention: pruned", "recordings", len(ids))
	}
}

// pruneAudit prunes the audit log below before, up to the slowest export
// sink's cursor.
func (p *pruner) pruneAudit(ctx context.Context, before time.Time) {
	limit, sink, err := audit.ExportHold(ctx, p.st, p.exportSinks)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("audit retention: prune skipped", "err", err)
		}
		return
	}
	res, err := p.audit.Prune(ctx, p.verifiers, before, limit)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("audit retention: prune failed", "err", err)
		}
		return
	}
	if res.Events() > 0 {
		p.log.Info("audit retention: pruned", "events", res.Events(), "below", res.Below)
	}
	if res.HeldBack {
		p.log.Warn("audit retention: keeping events past their retention until an export sink accepts them",
			"sink", sink, "sink_cursor", limit, "older_than", before)
	}
}
