package main

import (
	"fmt"
	"testing"
	"time"
)

// TestWebCanaries runs the daemon on the generic HTTP/JSON provider (issue 18, provider
// 6) pointed at a real Prometheus' query_range, as a user would point it at any
// Prometheus-compatible API: a canary whose latency is three times the baseline's fails
// and one drawn like the baseline passes. (Values that would add a URL parameter or a
// path segment are the package's TestInjection.)
func TestWebCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and the daemon")
	}
	now := time.Now().Truncate(time.Second)
	promURL := latencyPrometheus(t, now)
	cfg := latencyConfig(fmt.Sprintf(`{type: web, url: '%s/api/v1/query_range?query={{ .Query }}&start={{ .Start.Unix }}&end={{ .End.Unix }}&step={{ .Step.Seconds }}',
    points: '$.data.result[*].values', error: $.error, retries: 0}`, promURL), 60*time.Second, "milliseconds",
		`http_latency_ms{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}`)
	p, register := latencyDaemon(t, t.TempDir(), "web.yml", cfg, now.Add(-70*time.Second))

	slowFailsGoodPasses(t, p, register, 100, 60*time.Second)
}
