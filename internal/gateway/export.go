package gateway

import (
	"context"
	"log/slog"
	"sync"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

// exporter streams the audit log to the config's audit.export sinks, one
// audit.Streamer (and goroutine) each, from start until shutdown.
type exporter struct {
	streamers []*audit.Streamer
	names     []string
	log       *slog.Logger
}

// startExport starts a streamer per sink of cfg on st. Each resumes from
// its cursor in the store, so a sink that was down, or a gateway that was
// stopped, catches up from where delivery stopped.
func startExport(cfg *config.Config, st store.Store, m *metrics.Metrics, log *slog.Logger) (*exporter, error) {
	e := &exporter{log: log}
	for _, sink := range cfg.Audit.Export {
		failures := m.AuditExportFailures.WithLabelValues(sink.Name)
		events := m.AuditExportEvents.WithLabelValues(sink.Name)
		lag := m.AuditExportLag.WithLabelValues(sink.Name)
		s, err := audit.NewStreamer(st, audit.StreamConfig{
			Name: sink.Name, URL: sink.URL, Format: sink.Format, Secret: []byte(sink.Secret.Value()),
			BatchSize: sink.BatchSize, Interval: sink.Interval, Timeout: sink.Timeout,
			Logger:    log,
			Failed:    failures.Inc,
			Delivered: func(n int) { events.Add(float64(n)) },
			Lag:       func(n int64) { lag.Set(float64(n)) },
		})
		if err != nil {
			return nil, err // none started yet: nothing to stop
		}
		e.streamers = append(e.streamers, s)
		e.names = append(e.names, sink.Name)
	}
	for _, s := range e.streamers {
		s.Start()
	}
	if len(e.names) > 0 {
		log.Info("audit export streaming", "sinks", e.names)
	}
	return e, nil
}

// shutdown stops every streamer and waits for them. Each makes a last
// delivery bounded by ctx, so the receivers get the events recorded up to
// the gateway's stop; what misses ctx stays behind the cursor for the next
// start. The sinks stop side by side, so a slow one does not use up the
// others' time.
func (e *exporter) shutdown(ctx context.Context) {
	if e == nil {
		return
	}
	var wg sync.WaitGroup
	for i, s := range e.streamers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(ctx); err != nil {
				e.log.Warn("audit export: last delivery before stop failed; the next start resumes from the cursor",
					"sink", e.names[i], "err", err)
			}
		}()
	}
	wg.Wait()
}
