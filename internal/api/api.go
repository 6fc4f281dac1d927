// Package api serves Gatehouse's HTTP endpoints: /healthz, Prometheus
// /metrics and the REST API under /api/v1 (audit, sessions, approvals as
// those land). Every /api/v1 route authenticates a bearer token with the
// same verifier as the data path.
package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/gatehouse/gatehouse/internal/approval"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Options configure the handler.
type Options struct {
	Metrics *metrics.Metrics
	// Ready reports whether the gateway is serving; /healthz answers 503
	// while it is not (starting, draining).
	Ready func() bool
	// Pprof serves /debug/pprof (config api.pprof).
	Pprof bool
	// Approvals serves /api/v1/approvals when set; ApproverGroups may list
	// and decide (besides each request's reviewer groups).
	Approvals      *approval.Broker
	ApproverGroups []string

	// The audit trail and recordings API (/api/v1/audit, /api/v1/sessions;
	// see Trail) is served when Store is set. Requests are refused with 503
	// unless Audit and Verifier are set too: reads must be recorded and
	// callers verified.
	Store store.Store
	// Audit records every read (audit.read) and refusal; *audit.Log.
	Audit AuditAppender
	// Verifier verifies bearer tokens; *identity.Verifier.
	Verifier TokenVerifier
	// AuditorGroups may read the trail and recordings (config
	// api.auditor_groups).
	AuditorGroups []string
	// CheckpointVerifiers check checkpoint signatures for /audit/verify.
	CheckpointVerifiers note.Verifiers
	// Logger receives operational errors; discarded if nil.
	Logger *slog.Logger
	// Now is the clock for relative times in queries; time.Now if nil.
	Now func() time.Time
}

// NewHandler returns the HTTP handler of the API listener.
func NewHandler(opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if opts.Ready != nil && !opts.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Metrics.Registry, promhttp.HandlerOpts{}))
	if opts.Approvals != nil {
		ApprovalRoutes(mux, opts.Approvals, opts.Verifier, opts.ApproverGroups)
	}
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if opts.Store != nil {
		registerAudit(mux, opts)
	}
	return mux
}
