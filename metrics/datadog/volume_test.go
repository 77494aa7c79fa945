package datadog

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
	"github.com/canaryd/canaryd/analysis/simclock"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// volumeConfig is issue 18's load: an analysis of 3 metrics (errors, latency,
// saturation) judged every minute for an hour, on a Datadog provider whose options the
// test sets.
const volumeConfig = `
providers:
  dd: {type: datadog, api_url: "http://127.0.0.1:1", api_key_env: ` + testAPIKeyEnv + `, app_key_env: ` + testAppKeyEnv + `}
analyses:
  golden:
    provider: dd
    interval: 1m
    step: 1m
    lifetime: 61m
    warmup: 1m
    metrics:
      - name: errors
        query: 'sum:trace.http.request.errors{service:{{ .Vars.app }},track:{{ .Cohort.track }}}.as_count()'
        judge: {type: ratio, max: 1.5, for: 5m, critical: true}
      - name: latency
        query: 'avg:trace.http.request.duration{service:{{ .Vars.app }},track:{{ .Cohort.track }}}'
        judge: {type: mannwhitney}
      - name: saturation
        query: 'avg:kubernetes.cpu.usage.total{service:{{ .Vars.app }},track:{{ .Cohort.track }}}'
        judge: {type: mannwhitney}
`

// volumeRun is what one simulated hour measured.
type volumeRun struct {
	requests, limited, queries int
	statuses                   map[analysis.Status]int
	lags                       []time.Duration // every judged interval's, sorted
	intervals                  int
}

func (r volumeRun) lag(q float64) time.Duration {
	if len(r.lags) == 0 {
		return 0
	}
	return r.lags[min(len(r.lags)-1, int(q*float64(len(r.lags))))]
}

// runVolume registers canaries at the start of a calendar hour on a simulated clock
// and runs the daemon's scheduler (one worker, its memory store) until every canary
// has ended, against the budget Datadog (1,600 requests a calendar hour, Datadog's
// headers and 429) answering from the queries asked. The provider's waits move the
// clock, so an interval's lag (judged at − its end) is what the pacing cost it.
func runVolume(t *testing.T, canaries int, mutate func(*Config)) volumeRun {
	t.Helper()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := simclock.New(start)
	b := newBudgetDatadog(t, clock.Now, 1600, time.Hour)
	b.evaluate, b.alike = true, true
	setKeys(t)
	cfg := testConfig(b.srv.URL)
	if mutate != nil {
		mutate(&cfg)
	}
	sleep := func(ctx context.Context, d time.Duration) error {
		clock.Set(clock.Now().Add(d))
		return ctx.Err()
	}
	p, err := New(cfg, zap.NewNop(), WithSleep(sleep), WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	kinds := config.Kinds{Providers: map[string]config.ProviderKind{
		"datadog": config.ProviderKindOf(func(c Config, l *zap.Logger) (*Provider, error) { return New(c, l) }, config.RateLimit{}),
	}}
	conf, err := config.Parse([]byte(volumeConfig), kinds)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	sched := analysis.NewScheduler(analysis.Options{
		Store: store, Clock: clock, Logger: zap.NewNop(), Metrics: analysis.NewMetrics(prometheus.NewRegistry()),
		Actuation: analysis.NopActuation{}, Workers: 1, MaxConsecutiveErrors: 3, QueryTimeout: 30 * time.Second,
	})
	// The provider's rate_limit bucket (0.4/s, burst 20 by default) is left out: it waits
	// on the scheduler's clock, which only this loop moves. At one batch per canary and
	// interval (20 a minute) it would not bind.
	sched.SetEnv(&analysis.Env{Config: conf, Providers: map[string]metrics.Provider{"dd": p}})
	var ids []string
	for i := range canaries {
		c, err := sched.Register(t.Context(), analysis.Registration{
			Name: fmt.Sprintf("web-%d", i), Analysis: "golden", Start: start,
			Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
			Vars: map[string]string{"app": fmt.Sprintf("checkout-%d", i)},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	for {
		next, pending, err := sched.RunDue(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !pending {
			break
		}
		clock.Set(next)
	}
	run := volumeRun{statuses: map[analysis.Status]int{}}
	for _, id := range ids {
		d, err := sched.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		run.statuses[d.Status]++
		for _, r := range d.Results {
			run.lags = append(run.lags, r.JudgedAt.Sub(r.End))
		}
		run.intervals += len(d.Results)
	}
	slices.SortFunc(run.lags, func(a, b time.Duration) int { return cmp.Compare(a, b) })
	b.mu.Lock()
	run.requests, run.limited, run.queries = b.sent, b.limited, b.queries
	b.mu.Unlock()
	return run
}

// Issue 18's target: 20 canaries × 3 metrics at 1-minute intervals against a Datadog
// that allows 1,600 requests an hour. One query per cohort and metric (the provider's
// defaults) is 7,200 requests an hour, cohort_tag alone 3,600: paced, never refused, but
// the lag grows by hours. With queries_per_request (an interval's queries in one V2
// request) it is 1,200: every canary passes, none meets a 429, and no interval is late. The figures are logged (go test -run TestVolume -v
// ./metrics/datadog/) and in benchmarks/RESULTS.md.
func TestVolume(t *testing.T) {
	if testing.Short() {
		t.Skip("an hour of 20 canaries on a simulated clock: thousands of loopback requests")
	}
	for _, tc := range []struct {
		name     string
		mutate   func(*Config)
		requests int // in the hour, when the lag is bounded; 0: the lag grows
	}{
		{"defaults: one V1 query per cohort and metric", nil, 0},
		{"cohort_tag (V1)", func(c *Config) { c.CohortTag = "track" }, 0},
		{"queries_per_request 6 (V2)", func(c *Config) { c.QueryAPI, c.QueriesPerRequest = "v2", 6 }, 20 * 60},
		{"cohort_tag and queries_per_request 6 (V2)", func(c *Config) {
			c.QueryAPI, c.CohortTag, c.QueriesPerRequest = "v2", "track", 6
		}, 20 * 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runVolume(t, 20, tc.mutate)
			t.Logf("%s: %d requests (%d metric queries), %d answered 429; %d intervals judged; canaries %v; interval lag median %s, p99 %s, max %s",
				tc.name, r.requests, r.queries, r.limited, r.intervals, r.statuses, r.lag(0.5).Round(time.Second), r.lag(0.99).Round(time.Second), r.lag(1).Round(time.Second))
			if tc.requests == 0 {
				// Over the budget: paced and late. (A few requests reserved before a reset
				// but sent after it meet a 429 and wait for the next: the simulated clock
				// adds up concurrent waits.)
				if r.lag(1) < time.Hour {
					t.Errorf("lag max %s over the budget, want it to grow past an hour", r.lag(1))
				}
				return
			}
			if r.limited != 0 {
				t.Errorf("%d requests met a 429", r.limited)
			}
			if r.statuses[analysis.StatusPass] != 20 {
				t.Errorf("canaries %v, want 20 pass", r.statuses)
			}
			if r.intervals != 20*60 || r.requests != tc.requests {
				t.Errorf("%d intervals judged with %d requests, want %d and %d", r.intervals, r.requests, 20*60, tc.requests)
			}
			if max := r.lag(1); max > time.Minute {
				t.Errorf("lag max %s, want at most an interval", max)
			}
		})
	}
}
