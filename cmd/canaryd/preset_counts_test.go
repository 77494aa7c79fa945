package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
	promprov "github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

// presetCountSeries writes, for the tracks baseline and canary of app web, the counters
// and histogram buckets a service exports, scraped every scrape from first: each scrape
// off the 15 s query grid by offset. The canary's 200 counter resets at the middle scrape
// (a restart), and its 500 series appears only at scrape 10 (no 5xx until then). It
// returns the OpenMetrics text and, per track and query kind (errors, requests, and each
// bucket's le), every scrape's true increment since the previous one.
func presetCountSeries(first time.Time, scrapes int, scrape time.Duration) (om string, incs map[string][]float64, at []time.Time) {
	rng := rand.New(rand.NewPCG(7, 14))
	les := []string{"0.1", "0.5", "+Inf"}
	incs = map[string][]float64{}
	var req, lat strings.Builder
	for k := range scrapes {
		at = append(at, first.Add(time.Duration(k)*scrape))
	}
	for _, track := range []string{"baseline", "canary"} {
		ok, bad := 0.0, 0.0
		buckets := make([]float64, len(les))
		for k := range scrapes {
			dOK, dBad := float64(rng.IntN(40)), float64(rng.IntN(4))
			if track == "canary" && k < 10 {
				dBad = 0
			}
			if track == "canary" && k == scrapes/2 {
				ok = 0 // a restart: the counter starts again from 0
			}
			ok += dOK
			bad += dBad
			incs[track+"/errors"] = append(incs[track+"/errors"], dBad)
			incs[track+"/requests"] = append(incs[track+"/requests"], dOK+dBad)
			ts := at[k].Unix()
			fmt.Fprintf(&req, "http_requests_total{app=\"web\",track=%q,code=\"200\"} %g %d\n", track, ok, ts)
			if track == "baseline" || k >= 10 {
				fmt.Fprintf(&req, "http_requests_total{app=\"web\",track=%q,code=\"500\"} %g %d\n", track, bad, ts)
			}
			// The step's requests split over the buckets: cumulative, +Inf is all of them.
			n := dOK + dBad
			fast := math.Floor(n * rng.Float64())
			mid := math.Floor((n - fast) * rng.Float64())
			step := []float64{fast, fast + mid, n}
			for i, le := range les {
				buckets[i] += step[i]
				incs[track+"/le="+le] = append(incs[track+"/le="+le], step[i])
				fmt.Fprintf(&lat, "http_request_duration_seconds_bucket{app=\"web\",track=%q,le=%q} %g %d\n", track, le, buckets[i], ts)
			}
		}
	}
	om = "# TYPE http_requests counter\n" + req.String() +
		"# TYPE http_request_duration_seconds histogram\n" + lat.String() + "# EOF\n"
	return om, incs, at
}

// TestPresetCountQueriesAtRealScrapeIntervals runs the shipped counts and histogram
// queries against a real Prometheus whose series were scraped every 15 s and every 30 s,
// 7 s off the query grid (scrape times follow the target, not the canary): every step
// must read exactly the increments of the scrapes since the previous step, a counter
// reset and a 5xx series that appears mid-canary included. increase(x[15s]) fails this:
// a 15 s window holds one scrape of a 15 s scrape interval, so it answers nothing.
func TestPresetCountQueriesAtRealScrapeIntervals(t *testing.T) {
	const step = 15 * time.Second
	grid := time.Now().Add(-time.Hour).Truncate(time.Hour)
	for _, scrape := range []time.Duration{15 * time.Second, 30 * time.Second} {
		t.Run(scrape.String(), func(t *testing.T) {
			scrapes := int(20 * time.Minute / scrape)
			om, incs, at := presetCountSeries(grid.Add(7*time.Second), scrapes, scrape)
			path := filepath.Join(t.TempDir(), "series.om")
			if err := os.WriteFile(path, []byte(om), 0o600); err != nil {
				t.Fatal(err)
			}
			promURL := promtest.StartWith(t, promtest.Options{OpenMetrics: path})
			cfg := promprov.DefaultConfig()
			cfg.Address = promURL
			prov, err := promprov.New(cfg, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			// Steps from minute 2 to minute 18: each reads the scrapes in (t−15s, t].
			start, end := grid.Add(2*time.Minute), grid.Add(18*time.Minute)
			want := func(key string, t0 time.Time) float64 {
				sum := 0.0
				for k, a := range at {
					if a.After(t0.Add(-step)) && !a.After(t0) {
						sum += incs[key][k]
					}
				}
				return sum
			}
			for _, file := range []string{"golden-signals.yml", "rollback-presets.yml", "killswitch-presets.yml"} {
				c, err := config.Load(filepath.Join("../../configs", file), kinds())
				if err != nil {
					t.Fatal(err)
				}
				for name, a := range c.Analyses {
					for _, m := range a.Metrics {
						if m.Spec.Kind != judge.KindCounts && m.Spec.Kind != judge.KindHistogram {
							continue
						}
						queries := map[string]*metrics.QueryTemplate{"errors": m.Template}
						if m.Spec.Kind == judge.KindCounts {
							queries["requests"] = m.RequestsTemplate
						}
						for kind, tmpl := range queries {
							for _, track := range []string{"baseline", "canary"} {
								text, err := tmpl.Render(metrics.TemplateData{Cohort: map[string]string{"track": track}, Vars: map[string]string{"app": "web"}})
								if err != nil {
									t.Fatal(err)
								}
								s, err := prov.Query(t.Context(), metrics.Query{Text: text, Start: start, End: end, Step: step})
								if err != nil {
									t.Fatalf("%s %s %s %s: %v", file, name, m.Name, track, err)
								}
								checkPresetSteps(t, fmt.Sprintf("%s %s/%s %s %s", file, name, m.Name, kind, track), s, start, end, step,
									func(le string, t0 time.Time) float64 {
										if m.Spec.Kind == judge.KindHistogram {
											return want(track+"/le="+le, t0)
										}
										return want(track+"/"+kind, t0)
									})
							}
						}
					}
				}
			}
		})
	}
}

// checkPresetSteps checks that s has a point at every step from start to end, each the
// increment want gives for its stream's le ("" for a counts stream).
func checkPresetSteps(t *testing.T, what string, s metrics.Series, start, end time.Time, step time.Duration, want func(le string, t0 time.Time) float64) {
	t.Helper()
	if len(s.Streams) == 0 {
		t.Errorf("%s: no series", what)
		return
	}
	steps := int(end.Sub(start)/step) + 1
	for _, st := range s.Streams {
		le := st.Labels["le"]
		if len(st.Points) != steps {
			t.Errorf("%s le=%q: %d points, want one at each of %d steps", what, le, len(st.Points), steps)
			continue
		}
		bad := 0
		for _, p := range st.Points {
			t0 := time.UnixMilli(p.T)
			if w := want(le, t0); p.V != w {
				if bad == 0 {
					t.Errorf("%s le=%q at %s: %v, want %v (the scrapes' increments since the previous step)", what, le, t0.Format(time.TimeOnly), p.V, w)
				}
				bad++
			}
		}
		if bad > 1 {
			t.Errorf("%s le=%q: %d of %d steps wrong", what, le, bad, steps)
		}
	}
}
