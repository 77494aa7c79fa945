// Package prometheus is the metrics.Provider for Prometheus' HTTP API (range queries
// through client_golang's api/prometheus/v1): per-request timeouts, bounded retries on
// transient failures, and long ranges split under Prometheus' 11,000-points limit.
// It fetches and converts; it never judges, caches or rewrites the user's PromQL.
package prometheus
