package analysis_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
)

// oneShotConfig: a critical errors metric and a latency metric, each picked per cohort,
// equal weights, so a bad latency alone scores 50; a warmup that a one-shot window must
// not skip.
const oneShotConfig = `
providers:
  fake: {type: prometheus, address: "http://127.0.0.1:1"}
analyses:
  window:
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 30m
    warmup: 2m
    metrics:
      - name: errors
        query: 'e{{ .Cohort.errors }}-{{ .Cohort.track }}'
        judge: {type: mannwhitney, critical: true}
      - name: latency
        query: 'l{{ .Cohort.latency }}-{{ .Cohort.track }}'
        judge: {type: mannwhitney}
      - name: slow-ratio
        query: 'r-{{ .Cohort.track }}'
        judge: {type: ratio, max: 1.5, for: 1m}
`

func newOneShotHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := config.Parse([]byte(oneShotConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: newFakeClock(), path: filepath.Join(t.TempDir(), "canaryd.db"), prov: &fakeProvider{}, cfg: cfg}
	h.start()
	return h
}

// A registration with a start and an end in the past (a Kayenta execution) is judged at
// once, without the clock moving, as one interval over the whole window (no warmup), and
// its own thresholds decide the verdict.
func TestOneShotWindow(t *testing.T) {
	h := newOneShotHarness(t)
	start := h.clock.Now().Add(-20 * time.Minute)
	end := start.Add(5 * time.Minute)
	cases := []struct {
		name       string
		errors     string
		latency    string
		thresholds *analysis.Thresholds
		status     analysis.Status
		score      float64
	}{
		{"healthy", "ok", "ok", nil, analysis.StatusPass, 100},
		{"critical failure", "bad", "ok", nil, analysis.StatusFail, 200.0 / 3},
		{"latency alone, analysis' thresholds", "ok", "bad", nil, analysis.StatusFail, 200.0 / 3},
		{"latency alone, thresholds 60/50", "ok", "bad", &analysis.Thresholds{Pass: 60, Marginal: 50}, analysis.StatusPass, 200.0 / 3},
		{"latency alone, thresholds 90/60", "ok", "bad", &analysis.Thresholds{Pass: 90, Marginal: 60}, analysis.StatusMarginal, 200.0 / 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := h.sched.Register(t.Context(), analysis.Registration{
				Name: "web", Analysis: "window", Start: start, End: end, Thresholds: tc.thresholds,
				Baseline: map[string]string{"track": "baseline", "errors": "ok", "latency": "ok"},
				Canary:   map[string]string{"track": "canary", "errors": tc.errors, "latency": tc.latency},
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.Lifetime != 5*time.Minute || c.Interval != 5*time.Minute || c.Warmup != 0 || c.Intervals != 1 {
				t.Errorf("lifetime %s interval %s warmup %s intervals %d, want 5m, 5m, 0, 1", c.Lifetime, c.Interval, c.Warmup, c.Intervals)
			}
			deadline := time.Now().Add(10 * time.Second)
			d := h.get(c.ID)
			for !d.Status.Final() {
				if time.Now().After(deadline) {
					t.Fatalf("not judged within 10s with the clock standing still: %s", d.Status)
				}
				time.Sleep(5 * time.Millisecond)
				d = h.get(c.ID)
			}
			if d.Status != tc.status {
				t.Errorf("status %s (%s), want %s", d.Status, d.Reason, tc.status)
			}
			if d.Score == nil || *d.Score != tc.score {
				t.Errorf("score %v, want %g", d.Score, tc.score)
			}
			if len(d.Results) != 1 {
				t.Fatalf("%d intervals, want 1", len(d.Results))
			}
			r := d.Results[0]
			if !r.Start.Equal(start) || !r.End.Equal(end) {
				t.Errorf("judged %s..%s, want the window %s..%s", r.Start, r.End, start, end)
			}
			// Every step of the window, both ends included.
			for _, m := range r.Metrics {
				if m.Kind == judge.KindMannWhitney && m.Canary.N != 61 {
					t.Errorf("%s: %d canary points, want 61 (5m at 5s, both ends)", m.Name, m.Canary.N)
				}
			}
		})
	}
}

func TestOneShotErrors(t *testing.T) {
	h := newOneShotHarness(t)
	now := h.clock.Now()
	good := func() analysis.Registration {
		return analysis.Registration{
			Name: "web", Analysis: "window", Start: now.Add(-10 * time.Minute), End: now.Add(-5 * time.Minute),
			Baseline: map[string]string{"track": "baseline", "errors": "ok", "latency": "ok"},
			Canary:   map[string]string{"track": "canary", "errors": "ok", "latency": "ok"},
		}
	}
	cases := []struct {
		name   string
		change func(r *analysis.Registration)
		field  string
		msg    string
	}{
		{"no start", func(r *analysis.Registration) { r.Start = time.Time{} }, "start", "required with end: the window to judge is start..end"},
		{"end before start", func(r *analysis.Registration) { r.End = r.Start.Add(-time.Second) }, "end", "-1s is less than the analysis' step (5s) after start"},
		{"window under a step", func(r *analysis.Registration) { r.End = r.Start.Add(4 * time.Second) }, "end", "4s is less than the analysis' step (5s) after start"},
		{"window under a for", func(r *analysis.Registration) { r.End = r.Start.Add(30 * time.Second) }, "end", "the window (30s) is shorter than metric slow-ratio's for (1m0s): it could never fail"},
		{"lifetime too", func(r *analysis.Registration) { r.Lifetime = time.Minute }, "lifetime", "must not be given with end: the lifetime is end − start"},
		{"interval too", func(r *analysis.Registration) { r.Interval = time.Minute }, "interval", "must not be given with end: the window is judged once, as one interval"},
		{"pass 0", func(r *analysis.Registration) { r.Thresholds = &analysis.Thresholds{} }, "thresholds.pass", "must be > 0 and at most 100"},
		{"pass over 100", func(r *analysis.Registration) { r.Thresholds = &analysis.Thresholds{Pass: 101} }, "thresholds.pass", "must be > 0 and at most 100"},
		{"marginal over pass", func(r *analysis.Registration) { r.Thresholds = &analysis.Thresholds{Pass: 70, Marginal: 80} }, "thresholds.marginal", "must be within 0..pass (70)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.change(&r)
			_, err := h.sched.Register(t.Context(), r)
			var ie *analysis.InputError
			if !errors.As(err, &ie) || ie.Field != tc.field || ie.Msg != tc.msg {
				t.Errorf("want InputError %s: %s, got %v", tc.field, tc.msg, err)
			}
		})
	}
	if all, _ := h.sched.List(t.Context(), ""); len(all) != 0 {
		t.Errorf("bad registrations stored %d canaries", len(all))
	}
}
