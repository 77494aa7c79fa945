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

	"github.com/canaryd/canaryd/metrics/influxdb/influxtest"
)

// TestInfluxDBFluxCanaries runs the daemon on a real InfluxDB serving Flux (1.8 with
// flux-enabled and authentication, its token "user:password" from token_file; issue 18,
// provider 3): a canary whose latency is three times the baseline's fails on the Flux
// metric, one drawn like the baseline passes, and a track that would interpolate in a
// Flux string (${r.track}, which the registration lets through) reads exactly its own
// series — its ten points at its own level, not every track's pooled.
func TestInfluxDBFluxCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts influxd 1.8 (built once from the module proxy) and the daemon")
	}
	srv := influxtest.Start(t, influxtest.Options{Flux: true, Auth: true})
	srv.Exec(t, `CREATE DATABASE "app"`)
	now := time.Now().Truncate(time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	const hostile = "${r.track}"
	var lines strings.Builder
	for s := 120; s >= 0; s-- {
		at := now.Add(-time.Duration(s) * time.Second).UnixMilli()
		for track, base := range map[string]float64{"stable": 100, "good": 100, "slow": 300, hostile: 300} {
			fmt.Fprintf(&lines, "http,app=web,track=%s latency=%.3f %d\n", track, base+rng.Float64()*10, at)
		}
	}
	srv.Write(t, "app", lines.String())
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "influx-token")
	if err := os.WriteFile(tokenFile, []byte(influxtest.AdminUser+":"+influxtest.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := fmt.Sprintf(`server:
  min_interval: 1s
providers:
  influx: {type: influxdb, language: flux, address: %q, org: canaryd, token_file: %q, retries: 0}
analyses:
  latency:
    provider: influx
    interval: 10s
    step: 1s
    lifetime: 60s
    score: {pass: 95, marginal: 75}
    metrics:
      - name: mean-latency
        query: >-
          from(bucket: "app/autogen")
            |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
            |> filter(fn: (r) => r._measurement == "http" and r._field == "latency" and r.app == "{{ .Vars.app }}" and r.track == "{{ .Cohort.track }}")
            |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.2, critical: true, unit: milliseconds}
`, srv.URL, tokenFile)
	p, register := latencyDaemon(t, dir, "influx-flux.yml", cfg, now.Add(-70*time.Second))

	code, out := register(hostile)
	if code != http.StatusCreated {
		t.Fatalf("register %s: %d %v", hostile, code, out)
	}
	c := p.waitEnded(out["id"].(string), 60*time.Second)
	last := c.Intervals[len(c.Intervals)-1].Metrics[0]
	// One series a cohort over the same window: as many points as the baseline's.
	if c.Status != "fail" || last.Canary.N < 9 || last.Canary.N != last.Baseline.N || last.Canary.Median < 300 || last.Canary.Median > 310 {
		t.Errorf("%s: %s (%s), last interval %+v: want fail on its own points (as many as the baseline's) near 305", hostile, c.Status, c.Reason, last)
	}
	// The API shows the query as sent: the value escaped.
	var detail struct {
		Queries []struct{ Baseline, Canary string } `json:"queries"`
	}
	if code := p.call("GET", "/api/v1/canaries/"+out["id"].(string), nil, &detail); code != http.StatusOK || len(detail.Queries) != 1 ||
		!strings.Contains(detail.Queries[0].Canary, `r.track == "\x24{r.track}"`) || !strings.Contains(detail.Queries[0].Baseline, `r.track == "stable"`) {
		t.Errorf("GET the canary: %d, queries %+v; want the canary's track escaped as sent", code, detail.Queries)
	}
	slowFailsGoodPasses(t, p, register, 100, 60*time.Second)
	if strings.Contains(p.logs.String(), influxtest.AdminPassword) {
		t.Errorf("the token is in the daemon's log")
	}
}
