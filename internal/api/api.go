// Package api serves Gatehouse's HTTP endpoints: /healthz, Prometheus
// /metrics and the REST API under /api/v1 (audit, sessions, approvals as
// those land). Every /api/v1 route authenticates a bearer token with the
// same verifier as the data path.
package api

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the handler.
type Options struct {
	Metrics *metrics.Metrics
	// Ready reports whether the gateway is serving; /healthz answers 503
	// while it is not (starting, draining).
	Ready func() bool
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
	return mux
}
