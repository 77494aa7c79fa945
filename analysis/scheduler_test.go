package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/analysis/simclock"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// fakeClock is a manual clock: time moves only when a test calls Advance.
type fakeClock = simclock.Clock

func newFakeClock() *fakeClock { return simclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// fakeProvider answers "<signal>" queries from a table of per-point functions; a signal
// named "slow" blocks until the query's deadline and "broken" always fails. The
// harness registers its canaries at the fake clock's start, so with the analyses' 1m
// warmup and 5m lifetime a window ending after minute 4 is the last interval and one
// ending at minute 3 the second judged: "lastbroken" and "lastempty" fail or answer
// nothing in the last interval only, "gap" answers nothing in the second only. A point's
// value depends on its time only, so a window queried in parts reads what a query over
// the whole window does.
type fakeProvider struct {
	mu      sync.Mutex
	queries int
	ranges  []string // "start..end" of each query, as minutes:seconds after the clock's start
}

func (p *fakeProvider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	base := newFakeClock().Now()
	at := q.End.Sub(base)
	p.mu.Lock()
	p.queries++
	p.ranges = append(p.ranges, fmt.Sprintf("%s %v..%v", q.Text, q.Start.Sub(base), at))
	p.mu.Unlock()
	switch {
	case strings.Contains(q.Text, "lastbroken") && at > 4*time.Minute:
		return metrics.Series{}, errors.New("fake: HTTP 500")
	case strings.Contains(q.Text, "lastempty") && at > 4*time.Minute,
		strings.Contains(q.Text, "gap") && at == 3*time.Minute:
		return metrics.Series{}, nil
	case strings.Contains(q.Text, "lastbroken"), strings.Contains(q.Text, "lastempty"), strings.Contains(q.Text, "gap"):
	case strings.Contains(q.Text, "slow"):
		<-ctx.Done()
		return metrics.Series{}, fmt.Errorf("fake: %w", ctx.Err())
	case strings.Contains(q.Text, "broken"):
		return metrics.Series{}, errors.New("fake: backend unavailable")
	case strings.Contains(q.Text, "empty"):
		return metrics.Series{}, nil
	}
	level := 100.0
	if strings.Contains(q.Text, "bad") {
		level = 200
	}
	var pts []metrics.Point
	for t := q.Start; !t.After(q.End); t = t.Add(q.Step) {
		// Deterministic noise, so both cohorts overlap when their levels are equal.
		i := float64(t.UnixMilli() / 5000)
		pts = append(pts, metrics.Point{T: t.UnixMilli(), V: level + 5*math.Sin(i*1.7+float64(len(q.Text)))})
	}
	return metrics.Series{Streams: []metrics.Stream{{Points: pts}}}, nil
}

const testConfig = `
scheduler: {max_consecutive_errors: 2}
providers:
  fake: {type: prometheus, address: "http://127.0.0.1:1"}
analyses:
  basic:
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 5m
    warmup: 1m
    metrics:
      - name: latency
        query: '{{ .Cohort.signal }}-{{ .Cohort.track }}'
        judge: {type: mannwhitney, critical: true}
      - name: ratio
        query: 'r{{ .Cohort.signal }}-{{ .Cohort.track }}'
        judge: {type: ratio, max: 1.5, for: 30s}
  # A critical error rate whose signal the test picks, next to a latency that passes.
  critical:
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 5m
    warmup: 1m
    metrics:
      - name: errors
        query: 'e{{ .Cohort.signal }}-{{ .Cohort.track }}'
        judge: {type: mannwhitney, critical: true}
      - name: latency
        query: 'ok-{{ .Cohort.track }}'
        judge: {type: mannwhitney}
  critical-fail:
    unjudged_critical: fail
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 5m
    warmup: 1m
    metrics:
      - name: errors
        query: 'e{{ .Cohort.signal }}-{{ .Cohort.track }}'
        judge: {type: mannwhitney, critical: true}
      - name: latency
        query: 'ok-{{ .Cohort.track }}'
        judge: {type: mannwhitney}
  critical-kayenta:
    score: {rules: kayenta}
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 5m
    warmup: 1m
    metrics:
      - name: errors
        query: 'e{{ .Cohort.signal }}-{{ .Cohort.track }}'
        judge: {type: mannwhitney, critical: true}
      - name: latency
        query: 'ok-{{ .Cohort.track }}'
        judge: {type: mannwhitney}
`

type harness struct {
	t     *testing.T
	clock *fakeClock
	store analysis.Store
	path  string
	prov  *fakeProvider
	reg   *prometheus.Registry
	act   *recorder
	sched *analysis.Scheduler
	cfg   *config.Config
	check analysis.RegistrationCheck
	// wrap, when set, wraps prov before the scheduler sees it.
	wrap func(metrics.Provider) metrics.Provider
	// preflight is Options.Preflight.
	preflight analysis.PreflightCheck
	// leases is Options.Leases.
	leases analysis.Leases
	// provider, when set, is the provider the scheduler queries instead of prov.
	provider metrics.Provider
	// options, when set, edits the scheduler's options before it is built (another
	// actuation layer, other workers or timeouts).
	options func(*analysis.Options)
	// step is how far until advances the clock at a time (10 s when zero).
	step time.Duration
}

type recorder struct {
	mu      sync.Mutex
	actions []analysis.Action
	// started are the canaries OnStart was told of, with whether the store held each
	// when it was.
	started []startCall
	store   analysis.Store
}

type startCall struct {
	c      *analysis.Canary
	stored bool
}

func (r *recorder) OnStart(ctx context.Context, c *analysis.Canary) {
	_, err := r.store.Get(ctx, c.ID)
	r.mu.Lock()
	r.started = append(r.started, startCall{c: c, stored: err == nil})
	r.mu.Unlock()
}

func (r *recorder) OnVerdict(_ context.Context, c *analysis.Canary, a analysis.Action) {
	r.mu.Lock()
	r.actions = append(r.actions, a)
	r.mu.Unlock()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t: t, clock: newFakeClock(),
		path: filepath.Join(t.TempDir(), "canaryd.db"), prov: &fakeProvider{}, cfg: cfg,
	}
	h.start()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	st, err := boltstore.Open(h.path, time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = st
	h.reg = prometheus.NewRegistry()
	h.act = &recorder{store: st}
	opts := analysis.Options{
		Store: st, Clock: h.clock, Logger: zaptest.NewLogger(h.t), Metrics: analysis.NewMetrics(h.reg),
		Actuation: h.act, Workers: 4, MaxConsecutiveErrors: h.cfg.Scheduler.MaxConsecutiveErrors,
		QueryTimeout: 200 * time.Millisecond, CheckRegistration: h.check, Preflight: h.preflight, Limits: analysis.LimitsOf(h.cfg.Server),
		Leases: h.leases,
	}
	if h.options != nil {
		h.options(&opts)
	}
	h.sched = analysis.NewScheduler(opts)
	var prov metrics.Provider = h.prov
	if h.provider != nil {
		prov = h.provider
	}
	if h.wrap != nil {
		prov = h.wrap(prov)
	}
	h.sched.SetEnv(&analysis.Env{Config: h.cfg, Providers: map[string]metrics.Provider{"fake": prov}})
	if err := h.sched.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.sched == nil {
		return
	}
	h.sched.Stop(context.Background())
	h.store.Close()
	h.sched = nil
}

func (h *harness) register(baseline, canary string) *analysis.Canary {
	h.t.Helper()
	c, err := h.sched.Register(context.Background(), analysis.Registration{
		Name: "web", Analysis: "basic",
		Baseline: map[string]string{"track": "baseline", "signal": baseline},
		Canary:   map[string]string{"track": "canary", "signal": canary},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// until advances the clock a step (10 s unless set) at a time until cond holds, failing
// after a real-time deadline.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	step := h.step
	if step == 0 {
		step = 10 * time.Second
	}
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		h.clock.Advance(step)
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) get(id string) *analysis.Detail {
	h.t.Helper()
	d, err := h.sched.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// ended holds once the canary's final status is stored and the actuation layer has
// been told (in that order, so both are checked).
func (h *harness) ended(id string) func() bool {
	return func() bool {
		if !h.get(id).Status.Final() {
			return false
		}
		h.act.mu.Lock()
		defer h.act.mu.Unlock()
		for _, a := range h.act.actions {
			if a.CanaryID == id {
				return true
			}
		}
		return false
	}
}

func TestLifecycle(t *testing.T) {
	cases := []struct {
		name, baseline, canary string
		status                 analysis.Status
		trigger                analysis.Cause
		intervals              []int // the interval indexes recorded
		reason                 string
	}{
		{"healthy passes at lifetime", "ok", "ok", analysis.StatusPass, "lifetime", []int{2, 3, 4, 5}, "lifetime over; last interval scored 100.0"},
		{"critical regression fails at once", "ok", "bad", analysis.StatusFail, "critical", []int{2}, "critical metric failed in interval 2: latency: "},
		{"provider errors end as error", "ok", "broken", analysis.StatusError, "errors", []int{2, 3}, "2 intervals in a row had metrics in error (limit 2): latency: canary query: fake: backend unavailable"},
		{"no data is never a pass", "empty", "empty", analysis.StatusError, "nodata", []int{2, 3, 4, 5}, "lifetime over with no metric to score"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			c := h.register(tc.baseline, tc.canary)
			if c.Status != analysis.StatusRunning || c.Intervals != 5 || c.NextIndex != 2 {
				t.Fatalf("registered: %+v", c)
			}
			h.until("the canary to end", h.ended(c.ID))
			d := h.get(c.ID)
			if d.Status != tc.status || !strings.HasPrefix(d.Reason, tc.reason) {
				t.Errorf("status %s (%q), want %s (%q…)", d.Status, d.Reason, tc.status, tc.reason)
			}
			var idx []int
			for _, r := range d.Results {
				idx = append(idx, r.Index)
				if len(r.Metrics) != 2 || !r.Start.Equal(c.Start.Add(time.Minute)) || !r.End.Equal(c.IntervalEnd(r.Index)) {
					t.Errorf("interval %d: %d metrics, window %s..%s", r.Index, len(r.Metrics), r.Start, r.End)
				}
			}
			if fmt.Sprint(idx) != fmt.Sprint(tc.intervals) {
				t.Errorf("intervals %v, want %v", idx, tc.intervals)
			}
			if len(d.Actions) != 1 || d.Actions[0].Kind != "verdict" || d.Actions[0].Status != tc.status ||
				d.Actions[0].Cause != tc.trigger || !d.Actions[0].Actuate {
				t.Errorf("actions: %+v", d.Actions)
			}
			h.act.mu.Lock()
			if len(h.act.actions) != 1 || h.act.actions[0].Status != tc.status {
				t.Errorf("actuation: %+v", h.act.actions)
			}
			h.act.mu.Unlock()
			if n := len(series(t, h.reg, "canaryd_canary_score")); n != 0 {
				t.Errorf("score series left after the end: %d", n)
			}
			if got := series(t, h.reg, "canaryd_canaries")["status="+string(tc.status)]; got != 1 {
				t.Errorf("canaryd_canaries{status=%s} = %v", tc.status, got)
			}
			if got := series(t, h.reg, "canaryd_verdicts_total")["analysis=basic,status="+string(tc.status)]; got != 1 {
				t.Errorf("canaryd_verdicts_total = %v", got)
			}
		})
	}
}

// TestUnjudgedCritical: a critical metric that cannot be judged at the end never lets a
// canary pass (issue 13, finding 1); a gap in the middle does not end it early.
func TestUnjudgedCritical(t *testing.T) {
	cases := []struct {
		name, analysis, signal string
		status                 analysis.Status
		trigger                analysis.Cause
		score                  float64  // the canary's (last interval's) score
		verdicts               []string // every interval's verdict, 2..5
		reason                 string
	}{
		{"nodata throughout ends error, not pass", "critical", "empty", analysis.StatusError, "unjudged", 100,
			[]string{"unjudged", "unjudged", "unjudged", "unjudged"},
			"lifetime over; critical metric could not be judged in the last interval (5): errors: errors: no data: baseline has 0 points, canary 0"},
		{"error at the last interval only ends error", "critical", "lastbroken", analysis.StatusError, "unjudged", 100,
			[]string{"pass", "pass", "pass", "unjudged"},
			"lifetime over; critical metric could not be judged in the last interval (5): errors: baseline query: fake: HTTP 500"},
		{"nodata at the last interval only ends error", "critical", "lastempty", analysis.StatusError, "unjudged", 100,
			[]string{"pass", "pass", "pass", "unjudged"}, "lifetime over; critical metric could not be judged in the last interval (5): errors: errors: no data"},
		{"a gap mid-canary does not end it", "critical", "gap", analysis.StatusPass, "lifetime", 100,
			[]string{"pass", "unjudged", "pass", "pass"}, "lifetime over; last interval scored 100.0"},
		{"unjudged_critical: fail ends fail", "critical-fail", "empty", analysis.StatusFail, "unjudged", 100,
			[]string{"fail", "fail", "fail", "fail"}, "lifetime over; critical metric could not be judged in the last interval (5): errors: "},
		{"kayenta rules: a critical error scores 0 and fails", "critical-kayenta", "lastbroken", analysis.StatusFail, "unjudged", 0,
			[]string{"pass", "pass", "pass", "fail"}, "lifetime over; critical metric could not be judged in the last interval (5): errors: baseline query: fake: HTTP 500; interval scored 0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			c, err := h.sched.Register(t.Context(), analysis.Registration{
				Name: "web", Analysis: tc.analysis,
				Baseline: map[string]string{"track": "baseline", "signal": tc.signal},
				Canary:   map[string]string{"track": "canary", "signal": tc.signal},
			})
			if err != nil {
				t.Fatal(err)
			}
			h.until("the canary to end", h.ended(c.ID))
			d := h.get(c.ID)
			if d.Status != tc.status || !strings.HasPrefix(d.Reason, tc.reason) || d.Score == nil || *d.Score != tc.score {
				t.Errorf("status %s score %v (%q), want %s %v (%q…)", d.Status, d.Score, d.Reason, tc.status, tc.score, tc.reason)
			}
			var verdicts []string
			for _, r := range d.Results {
				verdicts = append(verdicts, string(r.Score.Verdict))
			}
			if fmt.Sprint(verdicts) != fmt.Sprint(tc.verdicts) {
				t.Errorf("interval verdicts %v, want %v", verdicts, tc.verdicts)
			}
			if len(d.Actions) != 1 || d.Actions[0].Status != tc.status || d.Actions[0].Cause != tc.trigger {
				t.Errorf("actions: %+v", d.Actions)
			}
			h.act.mu.Lock()
			if len(h.act.actions) != 1 || h.act.actions[0].Status != tc.status {
				t.Errorf("actuation: %+v", h.act.actions)
			}
			h.act.mu.Unlock()
		})
	}
}

// series gathers one metric family as labels ("k=v,k=v") → value.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[strings.Join(ls, ",")] = v
		}
	}
	return out
}

func TestAbortAndPromote(t *testing.T) {
	h := newHarness(t)
	a := h.register("ok", "ok")
	p := h.register("ok", "ok")
	ctx := context.Background()
	got, err := h.sched.Abort(ctx, a.ID, "", false)
	if err != nil || got.Status != analysis.StatusAborted {
		t.Fatalf("abort: %+v %v", got, err)
	}
	if _, err := h.sched.Abort(ctx, a.ID, "", true); !errors.Is(err, analysis.ErrFinished) {
		t.Errorf("second abort: want ErrFinished, got %v", err)
	}
	if _, err := h.sched.Promote(ctx, p.ID, "looks fine to me"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sched.Promote(ctx, "nope", ""); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("promote unknown: want ErrNotFound, got %v", err)
	}
	// Time passes: neither is judged again.
	for i := 0; i < 40; i++ {
		h.clock.Advance(10 * time.Second)
	}
	time.Sleep(50 * time.Millisecond)
	da, dp := h.get(a.ID), h.get(p.ID)
	if len(da.Results) != 0 || len(dp.Results) != 0 {
		t.Errorf("judged after ending: %d, %d intervals", len(da.Results), len(dp.Results))
	}
	if len(da.Actions) != 1 || da.Actions[0].Kind != "abort" || da.Actions[0].Actuate {
		t.Errorf("abort action: %+v", da.Actions)
	}
	if dp.Status != analysis.StatusPass || len(dp.Actions) != 1 || dp.Actions[0].Kind != "promote" || dp.Actions[0].Reason != "looks fine to me" {
		t.Errorf("promote: %s %+v", dp.Status, dp.Actions)
	}
}

// TestRestartResumes stops a scheduler mid-canary and starts another on the same store:
// the canary goes on from its next interval, and no interval is judged twice.
func TestRestartResumes(t *testing.T) {
	h := newHarness(t)
	c := h.register("ok", "ok")
	h.until("two intervals", func() bool { return len(h.get(c.ID).Results) >= 2 })
	h.stop()
	h.clock.Advance(2 * time.Minute) // down for a while: the missed intervals are caught up
	h.start()
	h.until("the canary to end", h.ended(c.ID))
	d := h.get(c.ID)
	var idx []int
	for _, r := range d.Results {
		idx = append(idx, r.Index)
	}
	if d.Status != analysis.StatusPass || fmt.Sprint(idx) != "[2 3 4 5]" {
		t.Errorf("after restart: %s, intervals %v", d.Status, idx)
	}
}

// TestSlowProviderDoesNotStall: a canary whose queries hang gets its metrics in error
// after the query timeout, while a healthy canary next to it finishes.
func TestSlowProviderDoesNotStall(t *testing.T) {
	h := newHarness(t)
	slow := h.register("ok", "slow")
	fast := h.register("ok", "ok")
	h.until("both to end", func() bool { return h.ended(slow.ID)() && h.ended(fast.ID)() })
	if s := h.get(slow.ID); s.Status != analysis.StatusError || !strings.Contains(s.Reason, "deadline exceeded") {
		t.Errorf("slow: %s %q", s.Status, s.Reason)
	}
	if f := h.get(fast.ID); f.Status != analysis.StatusPass {
		t.Errorf("fast: %s %q", f.Status, f.Reason)
	}
}

func TestRegisterErrors(t *testing.T) {
	h := newHarness(t)
	good := func() analysis.Registration {
		return analysis.Registration{
			Name: "web", Analysis: "basic",
			Baseline: map[string]string{"track": "baseline", "signal": "ok"},
			Canary:   map[string]string{"track": "canary", "signal": "ok"},
		}
	}
	cases := []struct {
		name   string
		change func(r *analysis.Registration)
		field  string
	}{
		{"no name", func(r *analysis.Registration) { r.Name = " " }, "name"},
		{"unknown analysis", func(r *analysis.Registration) { r.Analysis = "nope" }, "analysis"},
		{"missing cohort variable", func(r *analysis.Registration) { delete(r.Canary, "signal") }, "canary.signal"},
		{"missing baseline variable", func(r *analysis.Registration) { delete(r.Baseline, "track") }, "baseline.track"},
		{"lifetime shorter than interval", func(r *analysis.Registration) { r.Lifetime = 30 * time.Second }, "lifetime"},
		{"lifetime within warmup", func(r *analysis.Registration) { r.Lifetime, r.Interval = time.Minute, 10*time.Second }, "lifetime"},
		{"quote in value", func(r *analysis.Registration) { r.Canary["track"] = `x"}` }, "canary.track"},
		{"same cohorts", func(r *analysis.Registration) { r.Canary = r.Baseline }, "canary"},
		{"start far ahead", func(r *analysis.Registration) { r.Start = h.clock.Now().Add(2 * time.Hour) }, "start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.change(&r)
			_, err := h.sched.Register(context.Background(), r)
			var ie *analysis.InputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Errorf("want InputError on %s, got %v", tc.field, err)
			}
		})
	}
	all, _ := h.sched.List(context.Background(), "")
	if len(all) != 0 {
		t.Errorf("bad registrations stored %d canaries", len(all))
	}
}

// A registration that shortens the lifetime below a window metric's `for` (plus the
// warmup) is refused: that metric could never fail (issue 19, item 9).
func TestRegisterLifetimeShorterThanFor(t *testing.T) {
	h := newHarness(t)
	r := analysis.Registration{
		Name: "web", Analysis: "basic", Lifetime: 80 * time.Second, Interval: 10 * time.Second,
		Baseline: map[string]string{"track": "baseline", "signal": "ok"},
		Canary:   map[string]string{"track": "canary", "signal": "ok"},
	}
	_, err := h.sched.Register(t.Context(), r)
	var ie *analysis.InputError
	if !errors.As(err, &ie) || ie.Field != "lifetime" || ie.Msg != "1m20s leaves 20s after the analysis' warmup, shorter than metric ratio's for (30s): it could never fail" {
		t.Fatalf("got %v", err)
	}
	r.Lifetime = 90 * time.Second // 30s after the warmup: a run of 30s fits
	if _, err := h.sched.Register(t.Context(), r); err != nil {
		t.Fatalf("lifetime 90s: %v", err)
	}
}

// Each interval queries and stores only its new points, so the
// joined record is the series once, every step from the end of warmup to the lifetime.
func TestPointsRecordedOnce(t *testing.T) {
	h := newHarness(t)
	c := h.register("ok", "ok")
	h.until("the canary to end", h.ended(c.ID))
	d := h.get(c.ID)
	all := analysis.Series(d.Results)
	if len(all) != 2 || all[0].Metric != "latency" || all[1].Metric != "ratio" {
		t.Fatalf("metrics %+v", all)
	}
	first := c.Start.Add(time.Minute).UnixMilli()
	last := c.Start.Add(5 * time.Minute).UnixMilli()
	want := int((last-first)/5000) + 1 // every 5 s step, both ends included
	for _, mp := range all {
		for _, cohort := range [][]analysis.TimeValue{mp.Baseline, mp.Canary} {
			if len(cohort) != want {
				t.Fatalf("%s: %d points, want %d", mp.Metric, len(cohort), want)
			}
			for i, p := range cohort {
				if int64(p[0]) != first+int64(i)*5000 {
					t.Fatalf("%s point %d at %v, want %d", mp.Metric, i, p[0], first+int64(i)*5000)
				}
			}
		}
	}
	// The first judged interval holds everything from the end of warmup.
	if n := len(d.Results[0].Points[0].Baseline); n != 13 {
		t.Errorf("first interval stored %d points, want 13 (1m..2m at 5s)", n)
	}
}

// The registration check of the options (the actuators' layer in the daemon) sees the
// canary as it would be stored, and its refusal stores nothing.
func TestRegistrationCheck(t *testing.T) {
	h := newHarness(t)
	h.stop()
	var seen []*analysis.Canary
	h.check = func(a *config.Analysis, c *analysis.Canary) error {
		seen = append(seen, c)
		if a.Name != "basic" {
			return fmt.Errorf("analysis %s", a.Name)
		}
		if c.Vars["ns"] == "" {
			return &analysis.InputError{Field: "vars.ns", Msg: "actuator undo needs it"}
		}
		return nil
	}
	h.cfg.Server.MaxRunningPerAnalysis = 1
	h.start()
	r := analysis.Registration{
		Name: "web", Analysis: "basic", Vars: map[string]string{"app": "web"},
		Baseline: map[string]string{"track": "baseline", "signal": "ok"},
		Canary:   map[string]string{"track": "canary", "signal": "ok"},
	}
	_, err := h.sched.Register(context.Background(), r)
	var ie *analysis.InputError
	if !errors.As(err, &ie) || ie.Field != "vars.ns" {
		t.Fatalf("want the check's InputError, got %v", err)
	}
	if all, _ := h.sched.List(context.Background(), ""); len(all) != 0 {
		t.Errorf("a refused registration stored %d canaries", len(all))
	}
	r.Vars["ns"] = "shop"
	// The refusal did not hold the analysis' only running slot.
	c, err := h.sched.Register(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[1].Name != "web" || seen[1].Vars["ns"] != "shop" || seen[1].Canary["track"] != "canary" || seen[1].ID != "" || c.ID == "" {
		t.Errorf("the check saw %+v", seen)
	}
}

// server.max_running_per_analysis refuses a registration past the cap, with a
// LimitError, and frees the slot when a canary ends.
func TestRunningCap(t *testing.T) {
	h := newHarness(t)
	h.sched.SetLimits(analysis.Limits{MaxRunningPerAnalysis: 2})
	first := h.register("ok", "ok")
	h.register("ok", "ok")
	_, err := h.sched.Register(context.Background(), analysis.Registration{
		Name: "web", Analysis: "basic",
		Baseline: map[string]string{"track": "baseline", "signal": "ok"},
		Canary:   map[string]string{"track": "canary", "signal": "ok"},
	})
	var le *analysis.LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "analysis basic already has 2 running canaries") {
		t.Fatalf("third registration: %v", err)
	}
	if _, err := h.sched.Abort(context.Background(), first.ID, "", false); err != nil {
		t.Fatal(err)
	}
	h.register("ok", "ok")
}

// A mannwhitney metric without a tolerance is judged at the confidence its looks need:
// the basic analysis judges intervals 2..5, four looks at a 95% metric.
func TestLooksRaiseConfidence(t *testing.T) {
	h := newHarness(t)
	c := h.register("ok", "ok")
	if got := c.Looks(); got != 4 {
		t.Fatalf("Looks() = %d, want 4", got)
	}
	h.until("the canary to end", h.ended(c.ID))
	d := h.get(c.ID)
	for _, r := range d.Results {
		m := r.Metrics[0]
		if m.Name != "latency" || m.Kind != judge.KindMannWhitney {
			t.Fatalf("interval %d: first metric %+v", r.Index, m)
		}
		if want := 1 - 0.05/4; math.Abs(m.MannWhitney.Confidence-want) > 1e-12 {
			t.Errorf("interval %d: confidence %v, want %v", r.Index, m.MannWhitney.Confidence, want)
		}
		if !strings.Contains(m.Reason, "98.75% CI") || !strings.Contains(m.Reason, "confidence raised from 95% for 4 looks without a tolerance") {
			t.Errorf("interval %d: reason %q", r.Index, m.Reason)
		}
	}
}

// The actuation layer is told of a registration once the canary is stored (its on_start
// hook), and of none that was refused.
func TestOnStartAfterStored(t *testing.T) {
	h := newHarness(t)
	r := analysis.Registration{
		Name: "web", Analysis: "basic", Vars: map[string]string{"app": "web"},
		Baseline: map[string]string{"track": "baseline", "signal": "ok"},
		Canary:   map[string]string{"track": "canary", "signal": "ok"},
	}
	bad := r
	bad.Analysis = "nope"
	if _, err := h.sched.Register(context.Background(), bad); err == nil {
		t.Fatal("registered an unknown analysis")
	}
	c, err := h.sched.Register(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	h.act.mu.Lock()
	defer h.act.mu.Unlock()
	if len(h.act.started) != 1 || h.act.started[0].c.ID != c.ID || !h.act.started[0].stored ||
		h.act.started[0].c.Status != analysis.StatusRunning || !h.act.started[0].c.Start.Equal(c.Start) {
		t.Errorf("OnStart calls: %+v", h.act.started)
	}
}

// Each interval queries only the steps after the previous one; the earlier ones are read
// from the record, and the judge sees what one query over the whole window returns.
func TestWindowsQueriedOnce(t *testing.T) {
	h := newHarness(t)
	c := h.register("ok", "ok")
	h.until("the canary to end", h.ended(c.ID))
	d := h.get(c.ID)
	h.prov.mu.Lock()
	var got []string
	for _, r := range h.prov.ranges {
		if strings.HasPrefix(r, "ok-baseline ") {
			got = append(got, strings.TrimPrefix(r, "ok-baseline "))
		}
	}
	h.prov.mu.Unlock()
	want := []string{"1m0s..2m0s", "2m5s..3m0s", "3m5s..4m0s", "4m5s..5m0s"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("latency baseline queries %v, want %v", got, want)
	}
	// The last interval's rank test read every point of the window once.
	all := analysis.Series(d.Results)
	vals := func(tv []analysis.TimeValue) []float64 {
		var v []float64
		for _, p := range tv {
			v = append(v, p[1])
		}
		return v
	}
	spec := judge.MetricSpec{Name: "latency", Kind: judge.KindMannWhitney, Direction: judge.DirectionIncrease,
		Confidence: 0.95, AllowedIncrease: 1, AllowedDecrease: 1, MinPoints: 3, Looks: 4}
	whole := judge.Classify(spec, vals(all[0].Baseline), vals(all[0].Canary))
	last := d.Results[len(d.Results)-1].Metrics[0]
	if last.MannWhitney.U != whole.MannWhitney.U || last.MannWhitney.PValue != whole.MannWhitney.PValue ||
		last.Baseline.N != 49 || last.Canary.N != 49 {
		t.Errorf("last interval: U %v p %v n %d/%d; the whole window: U %v p %v n %d",
			last.MannWhitney.U, last.MannWhitney.PValue, last.Baseline.N, last.Canary.N,
			whole.MannWhitney.U, whole.MannWhitney.PValue, whole.Baseline.N)
	}
}
