package analysis_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

const recoveryConfig = `
providers:
  fake: {type: prometheus, address: "http://127.0.0.1:1"}
analyses:
  watched:
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 5m
    warmup: 1m
    recovery: {within: 3m}
    metrics:
      - name: latency
        query: '{{ .Cohort.signal }}'
        judge: {type: mannwhitney, critical: true}
      - name: saturation
        query: 'ok-{{ .Cohort.track }}'
        judge: {type: mannwhitney}
  watched-counts:
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 5m
    warmup: 1m
    recovery: {within: 3m}
    metrics:
      - name: errors
        query: 'err-{{ .Cohort.signal }}'
        requests_query: 'req-{{ .Cohort.signal }}'
        judge: {type: counts, critical: true}
`

// healProvider answers a signal per cohort: "ok" is level 100; "bad" 200 always (the
// rollback does not help); "heal" 200 until healAt, then 100; "healbroken" 200 until
// healAt, then the provider fails. Noise is a function of the point's time, so every
// window of a healthy series is drawn from the same sequence.
type healProvider struct {
	healAt time.Time
	mu     sync.Mutex
	after  int // queries of windows after healAt
}

func (p *healProvider) Query(_ context.Context, q metrics.Query) (metrics.Series, error) {
	sig, rest, _ := strings.Cut(q.Text, "-")
	counts := sig == "err" || sig == "req"
	if counts {
		// A counts metric: 1000 requests a step, 1% of them errors when healthy, 4%
		// when not.
		sig = rest
	}
	if !q.Start.Before(p.healAt) {
		p.mu.Lock()
		p.after++
		p.mu.Unlock()
		if sig == "healbroken" {
			return metrics.Series{}, errors.New("fake: backend unavailable")
		}
	}
	var pts []metrics.Point
	for t := q.Start; !t.After(q.End); t = t.Add(q.Step) {
		level := 100.0
		switch {
		case sig == "bad", (sig == "heal" || sig == "healbroken") && t.Before(p.healAt):
			level = 200
		}
		s := float64(t.Unix())
		v := level + 5*math.Sin(s*0.37) + 3*math.Sin(s*1.3)
		switch {
		case strings.HasPrefix(q.Text, "req-"):
			v = 1000
		case counts && level > 100:
			v = 40 // ×4: the count judge needs a few steps of evidence (its per-step cap)
		case counts:
			v = level / 10
		}
		pts = append(pts, metrics.Point{T: t.UnixMilli(), V: v})
	}
	return metrics.Series{Streams: []metrics.Stream{{Points: pts}}}, nil
}

// rollbackFake is the safety layer as the watch sees it: the fail actions, done after
// pending polls, and the outcomes it was told.
type rollbackFake struct {
	mu       sync.Mutex
	actions  []analysis.RollbackAction
	pending  int
	polls    int
	verdicts []analysis.Action
	told     []*analysis.Canary
}

func (r *rollbackFake) OnVerdict(_ context.Context, _ *analysis.Canary, a analysis.Action) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verdicts = append(r.verdicts, a)
}

func (r *rollbackFake) FailActions(_ context.Context, c *analysis.Canary) (bool, []analysis.RollbackAction, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.polls++
	if r.polls <= r.pending {
		return false, nil, nil
	}
	return true, r.actions, nil
}

func (r *rollbackFake) OnRecovery(_ context.Context, c *analysis.Canary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.told = append(r.told, c)
}

// recoveryHarness is the scheduler's harness on the heal provider, with rollbackFake
// as its actuation layer and a clock that moves 5 s at a time.
type recoveryHarness struct {
	*harness
	rb *rollbackFake
}

func newRecoveryHarness(t *testing.T, rb *rollbackFake) *recoveryHarness {
	t.Helper()
	cfg, err := config.Parse([]byte(recoveryConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	h := &recoveryHarness{rb: rb, harness: &harness{t: t, clock: clock, cfg: cfg, path: filepath.Join(t.TempDir(), "canaryd.db"),
		prov: &fakeProvider{}, step: 5 * time.Second,
		// The canary fails at its first judged interval (2m); its rollback ends 10 s later.
		provider: &healProvider{healAt: clock.Now().Add(2*time.Minute + 10*time.Second)},
		options: func(o *analysis.Options) {
			o.Actuation, o.Workers, o.QueryTimeout = rb, 2, time.Second
		}}}
	h.start()
	return h
}

func (h *recoveryHarness) canary(id string) *analysis.Canary {
	h.t.Helper()
	c, err := h.store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *recoveryHarness) decided(id string) func() bool {
	return func() bool {
		if r := h.canary(id).Recovery; r == nil || !r.Outcome.Final() {
			return false
		}
		// Then the actuation layer is told, after the metrics.
		h.rb.mu.Lock()
		defer h.rb.mu.Unlock()
		return len(h.rb.told) > 0
	}
}

func TestRecoveryWatch(t *testing.T) {
	t0 := newFakeClock().Now()
	rolledBack := t0.Add(2*time.Minute + 10*time.Second)
	ok := func(at time.Time) analysis.RollbackAction {
		return analysis.RollbackAction{Actuator: "rollback", State: "succeeded", DoneAt: &at}
	}
	cases := []struct {
		name     string
		analysis string
		signal   string
		abort    bool
		actions  []analysis.RollbackAction
		pending  int
		outcome  analysis.RecoveryOutcome
		reason   string
		checks   int
		decided  time.Time
		// rolledBack: the time to rollback is observed (a rollback succeeded).
		rolledBack bool
	}{
		{name: "recovered at the first check", signal: "heal", actions: []analysis.RollbackAction{ok(rolledBack)}, pending: 3,
			outcome: analysis.RecoveryRecovered, reason: "every watched metric is back", checks: 1, decided: rolledBack.Add(time.Minute), rolledBack: true},
		{name: "the rollback does not help", signal: "bad", actions: []analysis.RollbackAction{ok(rolledBack)},
			outcome: analysis.RecoveryNotRecovered, reason: "still outside tolerance at the end of the watch: latency (canary): 200", checks: 3,
			decided: rolledBack.Add(3 * time.Minute), rolledBack: true},
		{name: "the rollback failed", signal: "heal", actions: []analysis.RollbackAction{
			{Actuator: "notify", State: "succeeded", Notification: true, DoneAt: &rolledBack},
			{Actuator: "rollback", State: "failed", Error: "exit status 1: permission denied", DoneAt: &rolledBack}},
			outcome: analysis.RecoveryNotRecovered, reason: "the rollback failed: rollback failed: exit status 1: permission denied", decided: rolledBack},
		{name: "the provider fails during the watch", signal: "healbroken", actions: []analysis.RollbackAction{ok(rolledBack)},
			outcome: analysis.RecoveryUnknown, reason: "could not be judged at the end of the watch: latency (canary): query: fake: backend unavailable", checks: 3,
			decided: rolledBack.Add(3 * time.Minute), rolledBack: true},
		{name: "a counts metric recovered", analysis: "watched-counts", signal: "heal", actions: []analysis.RollbackAction{ok(rolledBack)},
			outcome: analysis.RecoveryRecovered, reason: "every watched metric is back", checks: 1, decided: rolledBack.Add(time.Minute), rolledBack: true},
		{name: "a counts metric not recovered", analysis: "watched-counts", signal: "bad", actions: []analysis.RollbackAction{ok(rolledBack)},
			outcome: analysis.RecoveryNotRecovered, reason: "errors (canary): 4% now (480 of 12000 requests) vs 1% before the canary (360 of 36000): higher than tolerated (1%)",
			checks: 3, decided: rolledBack.Add(3 * time.Minute), rolledBack: true},
		{name: "an abort without actions is watched from its end", signal: "heal", abort: true,
			// Watched from 1m30s: the check at 2m30s still sees the regression, the one at
			// 3m30s does not.
			outcome: analysis.RecoveryRecovered, checks: 2, reason: "every watched metric is back", decided: t0.Add(210 * time.Second)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb := &rollbackFake{actions: tc.actions, pending: tc.pending}
			h := newRecoveryHarness(t, rb)
			if tc.analysis == "" {
				tc.analysis = "watched"
			}
			c, err := h.sched.Register(t.Context(), analysis.Registration{Name: "web", Analysis: tc.analysis,
				Baseline: map[string]string{"track": "baseline", "signal": "ok"}, Canary: map[string]string{"track": "canary", "signal": tc.signal}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.abort {
				// Before the first judged interval (2m): the abort ends it.
				h.clock.Set(t0.Add(90 * time.Second))
				if _, err := h.sched.Abort(t.Context(), c.ID, "by hand", true); err != nil {
					t.Fatal(err)
				}
			}
			h.until("the recovery outcome", h.decided(c.ID))
			got := h.canary(c.ID)
			r := got.Recovery
			if got.Status != analysis.StatusFail && !(tc.abort && got.Status == analysis.StatusAborted) {
				t.Errorf("status %s: the watch must not change it", got.Status)
			}
			if r.Outcome != tc.outcome || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("outcome %s (%s), want %s (%s)", r.Outcome, r.Reason, tc.outcome, tc.reason)
			}
			if r.Checks != tc.checks {
				t.Errorf("%d checks, want %d", r.Checks, tc.checks)
			}
			if !tc.decided.IsZero() && !r.DecidedAt.Equal(tc.decided) {
				t.Errorf("decided at %s, want %s", r.DecidedAt, tc.decided)
			}
			if r.Reference != nil {
				t.Errorf("the reference points are kept after the outcome: %v", r.Reference)
			}
			if !tc.abort && got.FirstFailAt == nil {
				t.Error("first_fail_at not recorded")
			}
			if n := series(t, h.reg, "canaryd_rollbacks_total")["analysis="+tc.analysis+",outcome="+string(tc.outcome)]; n != 1 {
				t.Errorf("canaryd_rollbacks_total{outcome=%q} = %v, want 1", tc.outcome, n)
			}
			wantRecover := 0
			if tc.outcome == analysis.RecoveryRecovered {
				wantRecover = 1
			}
			if n := histCount(t, h.reg, "canaryd_time_to_recover_seconds"); n != wantRecover {
				t.Errorf("%d time-to-recover series, want %d", n, wantRecover)
			}
			if n := histCount(t, h.reg, "canaryd_time_to_rollback_seconds"); (n == 1) != tc.rolledBack {
				t.Errorf("%d time-to-rollback series, want one: %v", n, tc.rolledBack)
			}
			if tc.pending > 0 && rb.polls <= tc.pending {
				t.Errorf("%d polls of the fail actions, want more than %d", rb.polls, tc.pending)
			}
			rb.mu.Lock()
			defer rb.mu.Unlock()
			if len(rb.told) != 1 || rb.told[0].Recovery.Outcome != tc.outcome {
				t.Errorf("the actuation layer was told %d times", len(rb.told))
			}
		})
	}
}

// TestRecoveryWatchSurvivesRestart stops the scheduler after the watch's first check
// and starts a new one on the same store: the watch goes on from the stored check.
func TestRecoveryWatchSurvivesRestart(t *testing.T) {
	rolledBack := newFakeClock().Now().Add(2*time.Minute + 10*time.Second)
	rb := &rollbackFake{actions: []analysis.RollbackAction{{Actuator: "rollback", State: "succeeded", DoneAt: &rolledBack}}}
	h := newRecoveryHarness(t, rb)
	c, err := h.sched.Register(t.Context(), analysis.Registration{Name: "web", Analysis: "watched",
		Baseline: map[string]string{"track": "baseline", "signal": "ok"}, Canary: map[string]string{"track": "canary", "signal": "bad"}})
	if err != nil {
		t.Fatal(err)
	}
	h.until("the first check", func() bool { r := h.canary(c.ID).Recovery; return r != nil && r.Checks == 1 })
	h.stop()
	if r := h.canary2(c.ID).Recovery; r.Outcome != analysis.RecoveryWatching || len(r.Reference["latency"]) != 36 {
		t.Fatalf("stored watch %s with %d reference points, want watching with 36", r.Outcome, len(r.Reference["latency"]))
	}
	h.start()
	h.until("the recovery outcome", h.decided(c.ID))
	if r := h.canary(c.ID).Recovery; r.Outcome != analysis.RecoveryNotRecovered || r.Checks != 3 {
		t.Errorf("after the restart: %s after %d checks, want not_recovered after 3", r.Outcome, r.Checks)
	}
}

// histCount is how many observations a histogram family holds, over its series.
func histCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += int(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return n
}

// canary2 reads a stopped harness' store file.
func (h *recoveryHarness) canary2(id string) *analysis.Canary {
	h.t.Helper()
	st, err := boltstore.Open(h.path, time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}
