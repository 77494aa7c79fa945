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

	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

// latencyTracks are the cohorts the provider process tests judge, each a multiple of
// the level: the baseline "stable" and "good" drawn like it, "slow" three times slower.
var latencyTracks = []struct {
	name string
	base float64
}{{"stable", 1}, {"good", 1}, {"slow", 3}}

// latencySamples draws every second of the secs before now (now included), oldest
// first: each track's base·level plus up to a tenth of the level, passed to put.
func latencySamples(now time.Time, secs int, level float64, put func(track string, at time.Time, v float64)) {
	rng := rand.New(rand.NewPCG(1, 2))
	for s := secs; s >= 0; s-- {
		at := now.Add(-time.Duration(s) * time.Second)
		for _, tr := range latencyTracks {
			put(tr.name, at, tr.base*level+rng.Float64()*level/10)
		}
	}
}

// latencyPrometheus starts a real Prometheus whose TSDB holds latencySamples over the
// 120 s before now at level 100 as the gauge http_latency_ms{app="web",track=…},
// backfilled with promtool (a canary whose window is in the past is judged at once).
func latencyPrometheus(t *testing.T, now time.Time) (url string) {
	t.Helper()
	series := map[string]*strings.Builder{}
	latencySamples(now, 120, 100, func(track string, at time.Time, v float64) {
		if series[track] == nil {
			series[track] = &strings.Builder{}
		}
		fmt.Fprintf(series[track], "http_latency_ms{app=\"web\",track=%q} %.3f %d\n", track, v, at.Unix())
	})
	om := "# TYPE http_latency_ms gauge\n"
	for _, tr := range latencyTracks {
		om += series[tr.name].String()
	}
	path := filepath.Join(t.TempDir(), "latency.om")
	if err := os.WriteFile(path, []byte(om+"# EOF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return promtest.StartWith(t, promtest.Options{OpenMetrics: path})
}

// latencyConfig is the config the provider process tests run: min_interval 1s, the
// provider entry (a YAML flow mapping, {type: …, …}) named "metrics", and the analysis
// "latency" on it: 10 s intervals of 1 s steps over lifetime, one critical metric
// "latency" on query, judged by Mann-Whitney with an increase of up to 20% tolerated,
// in unit.
func latencyConfig(provider string, lifetime time.Duration, unit, query string) string {
	var q strings.Builder
	for _, line := range strings.Split(query, "\n") {
		q.WriteString("\n          " + line)
	}
	return fmt.Sprintf(`server:
  min_interval: 1s
providers:
  metrics: %s
analyses:
  latency:
    provider: metrics
    interval: 10s
    step: 1s
    lifetime: %s
    score: {pass: 95, marginal: 75}
    metrics:
      - name: latency
        query: |-%s
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.2, critical: true, unit: %s}
`, provider, lifetime, q.String(), unit)
}

// latencyDaemon is the set-up the provider process tests share: it writes cfg to
// dir/name, starts the daemon on it and returns the daemon with a registration of the
// analysis "latency" from start (baseline track stable, the canary's track as given,
// var app=web).
func latencyDaemon(t *testing.T, dir, name, cfg string, start time.Time) (*proc, func(track string) (int, map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, path, filepath.Join(dir, "canaryd.db"))
	from := start.UTC().Format(time.RFC3339)
	register := func(track string) (int, map[string]any) {
		var out map[string]any
		code := p.call("POST", "/api/v1/canaries", map[string]any{
			"name": "web " + track, "analysis": "latency", "start": from,
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
			"vars": map[string]string{"app": "web"},
		}, &out)
		return code, out
	}
	return p, register
}

// slowFailsGoodPasses registers the tracks "slow" (three times the baseline's level) and
// "good" (drawn like it): slow fails and good passes, and each one's last interval read its
// own ten seconds at 1 s, about ten points a cohort, with the baseline's median in
// [level, 1.1·level] and slow's in [3·level, 3.1·level].
func slowFailsGoodPasses(t *testing.T, p *proc, register func(string) (int, map[string]any), level float64, timeout time.Duration) {
	t.Helper()
	for track, want := range map[string]string{"slow": "fail", "good": "pass"} {
		code, out := register(track)
		if code != http.StatusCreated {
			t.Fatalf("register %s: %d %v", track, code, out)
		}
		c := p.waitEnded(out["id"].(string), timeout)
		if c.Status != want {
			t.Errorf("%s: status %s (%s), want %s", track, c.Status, c.Reason, want)
			continue
		}
		last := c.Intervals[len(c.Intervals)-1].Metrics[0]
		if last.Baseline.N < 9 || last.Canary.N < 9 || last.Baseline.Median < level || last.Baseline.Median > 1.1*level {
			t.Errorf("%s: last interval %+v: want the baseline's ~10 points near %s", track, last, fmt.Sprintf("%.3g", 1.05*level))
		}
		if track == "slow" && (last.Canary.Median < 3*level || last.Canary.Median > 3.1*level) {
			t.Errorf("slow: canary median %v, want near %.3g", last.Canary.Median, 3.05*level)
		}
	}
}

// refusedTrack registers a canary on track and wants a 400 naming canary.track whose
// error says says.
func refusedTrack(t *testing.T, register func(string) (int, map[string]any), track, says string) {
	t.Helper()
	if code, out := register(track); code != http.StatusBadRequest || out["field"] != "canary.track" || !strings.Contains(fmt.Sprint(out["error"]), says) {
		t.Errorf("track %q: %d %v, want 400 naming canary.track and saying %q", track, code, out, says)
	}
}
