package analysis_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// setClock is a clock that moves only by set.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *setClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

func (c *setClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

const simConfig = `
providers:
  sim: {type: synthetic, seed: 3, regressions: {bad: {error_rate: {ratio: 20}}}}
analyses:
  sim:
    provider: sim
    interval: 1m
    step: 10s
    lifetime: 5m
    warmup: 1m
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }}'
        judge: {type: mannwhitney, allowed_increase: 1.5, allowed_delta: 0.0025, critical: true}
`

// TestRunDue drives a scheduler that was never started, as canaryd eval does: each
// RunDue judges what is due and says when the next interval ends; time moves only when
// the caller sets the clock.
func TestRunDue(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Parse([]byte(simConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	prov, err := cfg.Providers["sim"].Build(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 2, 3, 4, 0, 0, 0, time.UTC)
	clock := &setClock{now: t0}
	s := analysis.NewScheduler(analysis.Options{Store: memstore.New(), Clock: clock})
	s.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"sim": prov}})
	ids := map[string]string{}
	for _, track := range []string{"good", "bad"} {
		c, err := s.Register(ctx, analysis.Registration{Name: track, Analysis: "sim",
			Baseline: map[string]string{"track": "base"}, Canary: map[string]string{"track": track}})
		if err != nil {
			t.Fatal(err)
		}
		ids[track] = c.ID
	}
	var steps []time.Duration
	for {
		next, pending, err := s.RunDue(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !pending {
			break
		}
		steps = append(steps, next.Sub(t0))
		clock.set(next)
	}
	// Intervals 2..5 end at 2m..5m (the first ends inside the warmup); the bad canary
	// fails at 2m, so 3m..5m are the good one's alone.
	if got := fmtDurations(steps); got != "2m0s 3m0s 4m0s 5m0s" {
		t.Errorf("clock steps %s", got)
	}
	for track, want := range map[string]analysis.Status{"good": analysis.StatusPass, "bad": analysis.StatusFail} {
		d, err := s.Get(ctx, ids[track])
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != want {
			t.Errorf("%s: %s (%s), want %s", track, d.Status, d.Reason, want)
		}
		if want == analysis.StatusFail && (len(d.Results) != 1 || !d.EndedAt.Equal(t0.Add(2*time.Minute))) {
			t.Errorf("bad: %d intervals, ended %v; want the first judged interval, at 2m", len(d.Results), d.EndedAt)
		}
	}

	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	if _, _, err := s.RunDue(ctx, 1); err == nil || !strings.Contains(err.Error(), "started") {
		t.Errorf("RunDue on a started scheduler: %v, want an error", err)
	}
}

func fmtDurations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.String())
	}
	return strings.Join(parts, " ")
}
