// Package metrics defines Gatehouse's Prometheus metrics. A Metrics value is
// created per gateway on its own registry (no global state) and handed to
// the components that update it.
package metrics

import (
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
	MaskFailures     prometheus.Counter
	ValuesMasked     *prometheus.CounterVec // by connection
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
			Help:    "Time from a statement's arrival to its completion reply from the target.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"connection"}),
		Statements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_statements_total", Help: "Statements judged, by decision.",
		}, []string{"connection", "decision"}),
		AuditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_write_failures_total", Help: "Audit appends that failed; the statements were refused.",
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
		m.AuditExportFailures, m.AuditExportEvents, m.AuditExportLag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchAuditRestamps exports restamped, the audit log's count of events
// re-stamped to keep the log in time order (audit.Stats.Restamped).
func (m *Metrics) WatchAuditRestamps(restamped func() int64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gatehouse_audit_restamped_events_total",
		Help: "Audit events stamped later than this gateway stamped them, to keep the log in time order: another replica appended a later event first (its clock ahead, or commit order).",
	}, func() float64 { return float64(restamped()) }))
}
