package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics/graphite/graphitetest"
)

// TestGraphiteCanaries runs the daemon on a real carbon-cache and graphite-web (issue 18,
// provider 4): a canary whose latency is three times the baseline's fails, one drawn like
// the baseline passes, and a cohort value that would widen the path to other series is
// refused at registration, naming the field.
func TestGraphiteCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts carbon-cache, graphite-web and the daemon")
	}
	srv := graphitetest.Start(t)
	now := time.Now().Truncate(time.Second)
	var lines strings.Builder
	const secs = 120
	latencySamples(now, secs, 100, func(track string, at time.Time, v float64) {
		fmt.Fprintf(&lines, "app.web.%s.latency %.3f %d\n", track, v, at.Unix())
	})
	srv.Write(t, lines.String(), "app.web.*.latency", now.Add(-secs*time.Second), now, 3*(secs+1))

	cfg := latencyConfig(fmt.Sprintf("{type: graphite, address: %q, retries: 0}", srv.URL), 60*time.Second, "milliseconds",
		`app.{{ .Vars.app }}.{{ .Cohort.track }}.latency`)
	p, register := latencyDaemon(t, t.TempDir(), "graphite.yml", cfg, now.Add(-70*time.Second))

	// `*` would make the canary's path match the baseline's series too.
	for _, hostile := range []string{"*", "{slow,stable}", "v2.14"} {
		refusedTrack(t, register, hostile, "Graphite path node")
	}
	slowFailsGoodPasses(t, p, register, 100, 60*time.Second)
}
