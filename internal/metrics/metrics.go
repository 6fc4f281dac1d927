// Package metrics defines Gatehouse's Prometheus metrics. A Metrics value is
// created per gateway on its own registry (no global state) and handed to
// the components that update it.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the gateway's counters, gauges and histograms.
type Metrics struct {
	Registry *prometheus.Registry

	SessionsActive   *prometheus.GaugeVec   // by connection
	SessionsTotal    *prometheus.CounterVec // by connection
	AuthFailures     *prometheus.CounterVec // by reason
	TargetErrors     *prometheus.CounterVec // by connection, kind
	Bytes            *prometheus.CounterVec // by connection, direction (client_to_target, target_to_client)
	StatementLatency *prometheus.HistogramVec
	Statements       *prometheus.CounterVec // by connection, decision
	AuditFailures    prometheus.Counter
	// The audit log's writes (see AuditObserver).
	AuditCommitDuration prometheus.Histogram
	AuditCommitEvents   prometheus.Histogram
	AuditWaitDuration   prometheus.Histogram
	MaskFailures        prometheus.Counter
	ValuesMasked        *prometheus.CounterVec // by connection
	// Streaming audit export (audit.export), by sink.
	AuditExportFailures *prometheus.CounterVec
	AuditExportEvents   *prometheus.CounterVec
	AuditExportLag      *prometheus.GaugeVec
}

// New registers Gatehouse's metrics, plus the Go runtime and process
// collectors, on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		SessionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_sessions_active", Help: "Sessions currently open.",
		}, []string{"connection"}),
		SessionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sessions_total", Help: "Sessions opened since start.",
		}, []string{"connection"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_auth_failures_total", Help: "Failed client authentications and authorizations, by reason.",
		}, []string{"reason"}),
		TargetErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_target_errors_total", Help: "Failures reaching or talking to a target.",
		}, []string{"connection", "kind"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_bytes_total", Help: "Bytes relayed, by direction.",
		}, []string{"connection", "direction"}),
		StatementLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_statement_duration_seconds",
			Help:    "Time from a statement's forwarding to the target (after its audit event is durable: see gatehouse_audit_wait_duration_seconds) to the target's completion reply, an approval's wait included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"connection"}),
		Statements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_statements_total", Help: "Statements judged, by decision.",
		}, []string{"connection", "decision"}),
		AuditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_write_failures_total", Help: "Audit appends that failed; the statements were refused.",
		}),
		AuditCommitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_audit_commit_duration_seconds",
			Help: "Time to write one batch of audit events to the store, retries included: on the embedded store the journal's write and (audit.durability fsync) its fdatasync, on PostgreSQL the transaction.",
			// 50 µs to 1.6 s: an fdatasync on a local disk to a remote
			// PostgreSQL under load.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		AuditCommitEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatehouse_audit_commit_events",
			Help:    "Audit events per batch written to the store: how many statements share one write and flush (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		AuditWaitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatehouse_audit_wait_duration_seconds",
			Help:    "Time a statement waited for its audit event to be durable before it was forwarded: the commit in progress it queued behind, and its own.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		MaskFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_mask_failures_total", Help: "Messages withheld because masking failed.",
		}),
		ValuesMasked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_values_masked_total", Help: "Values masked in responses.",
		}, []string{"connection"}),
		AuditExportFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_audit_export_failures_total",
			Help: "Failed deliveries of audit events to an export sink (retried), and gaps of events deleted before delivery.",
		}, []string{"sink"}),
		AuditExportEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_audit_export_events_total", Help: "Audit events an export sink accepted (a retried batch counts again).",
		}, []string{"sink"}),
		AuditExportLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_audit_export_lag_events", Help: "Audit events an export sink has not accepted yet.",
		}, []string{"sink"}),
	}
	r.MustRegister(m.SessionsActive, m.SessionsTotal, m.AuthFailures, m.TargetErrors, m.Bytes,
		m.StatementLatency, m.Statements, m.AuditFailures, m.MaskFailures, m.ValuesMasked,
		m.AuditCommitDuration, m.AuditCommitEvents, m.AuditWaitDuration,
		m.AuditExportFailures, m.AuditExportEvents, m.AuditExportLag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// AuditCounters read the audit log's counters when metrics are scraped.
// A nil field is not exported.
type AuditCounters struct {
	Commits   func() int64 // store transactions that committed (audit.Stats.Batches)
	Events    func() int64 // events they held (audit.Stats.Events)
	Restamped func() int64 // audit.Stats.Restamped
	// The embedded store's journal (store.JournalStats).
	Unindexed        func() int64
	IndexWaits       func() int64
	IndexWaitSeconds func() float64
}

// WatchAudit exports c.
func (m *Metrics) WatchAudit(c AuditCounters) {
	counter := func(name, help string, f func() int64) {
		if f != nil {
			m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(f()) }))
		}
	}
	counter("gatehouse_audit_commits_total",
		"Batches of audit events committed to the store (group commit: concurrent statements share one).", c.Commits)
	counter("gatehouse_audit_events_total", "Audit events committed to the store.", c.Events)
	counter("gatehouse_audit_restamped_events_total",
		"Audit events stamped later than this gateway stamped them, to keep the log in time order: another replica appended a later event first (its clock ahead, or commit order).",
		c.Restamped)
	counter("gatehouse_audit_index_waits_total",
		"Audit appends that waited for the embedded store's index to catch up before the journal could take them: routinely when the journal starts over, and on every append while the index falls behind.",
		c.IndexWaits)
	if c.IndexWaitSeconds != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gatehouse_audit_index_wait_seconds_total",
			Help: "Time audit appends spent waiting for the embedded store's index (see gatehouse_audit_index_waits_total).",
		}, c.IndexWaitSeconds))
	}
	if c.Unindexed != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_audit_unindexed_events",
			Help: "Audit events in the embedded store's journal, durable, that its index (what queries read) does not hold yet.",
		}, func() float64 { return float64(c.Unindexed()) }))
	}
}

// AuditObserver returns the audit.Observer that feeds the audit histograms.
func (m *Metrics) AuditObserver() AuditObserver { return AuditObserver{m} }

// AuditObserver implements audit.Observer.
type AuditObserver struct{ m *Metrics }

// ObserveCommit implements audit.Observer.
func (o AuditObserver) ObserveCommit(events int, took time.Duration) {
	o.m.AuditCommitDuration.Observe(took.Seconds())
	o.m.AuditCommitEvents.Observe(float64(events))
}

// ObserveWait implements audit.Observer.
func (o AuditObserver) ObserveWait(took time.Duration) { o.m.AuditWaitDuration.Observe(took.Seconds()) }
