package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
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
	rng := rand.New(rand.NewPCG(1, 2))
	var lines strings.Builder
	const secs = 120
	for s := secs; s >= 0; s-- {
		at := now.Add(-time.Duration(s) * time.Second).Unix()
		for track, base := range map[string]float64{"stable": 100, "good": 100, "slow": 300} {
			fmt.Fprintf(&lines, "app.web.%s.latency %.3f %d\n", track, base+rng.Float64()*10, at)
		}
	}
	srv.Write(t, lines.String(), "app.web.*.latency", now.Add(-secs*time.Second), now, 3*(secs+1))

	cfg := fmt.Sprintf(`server:
  min_interval: 1s
providers:
  graphite: {type: graphite, address: %q, retries: 0}
analyses:
  latency:
    provider: graphite
    interval: 10s
    step: 1s
    lifetime: 60s
    score: {pass: 95, marginal: 75}
    metrics:
      - name: latency
        query: 'app.{{ .Vars.app }}.{{ .Cohort.track }}.latency'
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.2, critical: true, unit: milliseconds}
`, srv.URL)
	path := filepath.Join(t.TempDir(), "graphite.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, path, filepath.Join(t.TempDir(), "canaryd.db"))
	start := now.Add(-70 * time.Second).UTC().Format(time.RFC3339)
	register := func(track string) (int, map[string]any) {
		var out map[string]any
		code := p.call("POST", "/api/v1/canaries", map[string]any{
			"name": "web " + track, "analysis": "latency", "start": start,
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
			"vars": map[string]string{"app": "web"},
		}, &out)
		return code, out
	}

	// `*` would make the canary's path match the baseline's series too.
	for _, hostile := range []string{"*", "{slow,stable}", "v2.14"} {
		code, out := register(hostile)
		if code != http.StatusBadRequest || out["field"] != "canary.track" || !strings.Contains(fmt.Sprint(out["error"]), "Graphite path node") {
			t.Errorf("track %q: %d %v, want 400 naming canary.track", hostile, code, out)
		}
	}
	for track, want := range map[string]string{"slow": "fail", "good": "pass"} {
		code, out := register(track)
		if code != http.StatusCreated {
			t.Fatalf("register %s: %d %v", track, code, out)
		}
		c := p.waitEnded(out["id"].(string), 60*time.Second)
		if c.Status != want {
			t.Errorf("%s: status %s (%s), want %s", track, c.Status, c.Reason, want)
			continue
		}
		last := c.Intervals[len(c.Intervals)-1].Metrics[0]
		// Each interval reads its own 10 s at 1 s: about ten points a cohort.
		if last.Baseline.N < 9 || last.Canary.N < 9 || last.Baseline.Median < 100 || last.Baseline.Median > 110 {
			t.Errorf("%s: last interval %+v: want the baseline's ~10 points near 105", track, last)
		}
		if track == "slow" && (last.Canary.Median < 300 || last.Canary.Median > 310) {
			t.Errorf("slow: canary median %v, want near 305", last.Canary.Median)
		}
	}
}
