package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// backlogConfig: one metric, so each interval is two queries; a start an hour in the past
// leaves 360 intervals (720 queries) due at registration.
const backlogConfig = `
providers:
  fake: {type: prometheus, address: "http://127.0.0.1:1"}
analyses:
  backlog:
    provider: fake
    interval: 10s
    step: 5s
    lifetime: 2h
    metrics:
      - name: latency
        query: '{{ .Cohort.signal }}-{{ .Cohort.track }}'
        judge: {type: mannwhitney}
`

// A canary registered with a start in the past has every interval since then due at
// once. The token buckets (per canary, per provider) make it catch up at their rate:
// at any simulated time T after registration, at most burst + qps·T queries were sent.
func TestPastStartCatchesUpAtTheRateLimit(t *testing.T) {
	cases := []struct {
		name     string
		canaries int
		canary   config.RateLimit // scheduler.canary_rate_limit
		provider config.RateLimit // the provider's rate_limit
		qps      float64          // the bound that holds
		burst    int
	}{
		{"per canary", 1, config.RateLimit{QPS: 2, Burst: 10}, config.RateLimit{}, 2, 10},
		{"per provider, over three canaries", 3, config.RateLimit{QPS: 1000, Burst: 1000}, config.RateLimit{QPS: 4, Burst: 6}, 4, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(backlogConfig), testKinds())
			if err != nil {
				t.Fatal(err)
			}
			clock, prov := newFakeClock(), &fakeProvider{}
			sched := analysis.NewScheduler(analysis.Options{
				Store: memstore.New(), Clock: clock, Logger: zaptest.NewLogger(t), Metrics: analysis.NewMetrics(prometheus.NewRegistry()),
				Workers: 4, CanaryRateLimit: tc.canary, ShutdownGrace: 10 * time.Millisecond,
			})
			sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"fake": prov},
				RateLimits: map[string]config.RateLimit{"fake": tc.provider}})
			if err := sched.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sched.Stop(context.Background()) })
			t0 := clock.Now()
			for i := range tc.canaries {
				if _, err := sched.Register(t.Context(), analysis.Registration{
					Name: "web", Analysis: "backlog", Start: t0.Add(-time.Hour),
					Baseline: map[string]string{"track": "baseline", "signal": "good"},
					Canary:   map[string]string{"track": "canary", "signal": "good"},
					Vars:     map[string]string{"n": string(rune('a' + i))},
				}); err != nil {
					t.Fatal(err)
				}
			}
			queries := func() int {
				prov.mu.Lock()
				defer prov.mu.Unlock()
				return prov.queries
			}
			const steps = 60
			for s := 0; s <= steps; s++ {
				// Let the workers take what the buckets allow at this instant.
				time.Sleep(10 * time.Millisecond)
				elapsed := clock.Now().Sub(t0).Seconds()
				if n, limit := queries(), tc.burst+int(tc.qps*elapsed); n > limit {
					t.Fatalf("%d queries %.0fs after registration, more than burst %d + %.0f/s", n, elapsed, tc.burst, tc.qps)
				}
				if s < steps {
					clock.Advance(time.Second)
				}
			}
			// Bounded, not stalled: the backlog drains at the limit's pace.
			if n := queries(); n < int(tc.qps*steps)/2 {
				t.Errorf("only %d queries in %ds at %.0f/s", n, steps, tc.qps)
			}
			t.Logf("%d queries in %ds (bound %d + %.0f/s; without a limit all %d at once)", queries(), steps, tc.burst, tc.qps, tc.canaries*720)
		})
	}
}

// Without a limit the same backlog is sent at once: what the buckets prevent.
func TestPastStartWithoutALimitIsABurst(t *testing.T) {
	cfg, err := config.Parse([]byte(backlogConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	clock, prov := newFakeClock(), &fakeProvider{}
	sched := analysis.NewScheduler(analysis.Options{
		Store: memstore.New(), Clock: clock, Logger: zaptest.NewLogger(t), Metrics: analysis.NewMetrics(prometheus.NewRegistry()), Workers: 4,
	})
	sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"fake": prov}})
	if err := sched.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(context.Background()) })
	if _, err := sched.Register(t.Context(), analysis.Registration{
		Name: "web", Analysis: "backlog", Start: clock.Now().Add(-time.Hour),
		Baseline: map[string]string{"track": "baseline", "signal": "good"},
		Canary:   map[string]string{"track": "canary", "signal": "good"},
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		prov.mu.Lock()
		n := prov.queries
		prov.mu.Unlock()
		if n >= 720 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queries, want the whole backlog (720) without the clock moving", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
