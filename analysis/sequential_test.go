package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

const seqConfig = `
providers:
  fake: {type: prometheus, address: "http://127.0.0.1:1"}
analyses:
  seq:
    provider: fake
    interval: 1m
    step: 5s
    lifetime: 5m
    warmup: 1m
    metrics:
      - name: errors
        query: 'err-{{ .Cohort.track }}'
        requests_query: 'req-{{ .Cohort.track }}'
        judge: {type: counts, critical: true}
      - name: latency
        query: 'bkt-{{ .Cohort.track }}'
        judge: {type: histogram}
`

// countsProvider answers the seq analysis' queries with fixed counts per step (baseline
// 2 errors of 100 requests, canary 1 of 50; buckets of 10 requests at ≤ 0.1 s and 10
// more at ≤ 0.5 s per cohort) and records every step it returned per query. With
// replay, it also returns the minute before the asked start, as a provider that ignores
// the start would: the judge must refuse those steps.
type countsProvider struct {
	replay  bool
	mu      sync.Mutex
	fetched map[string]map[int64]int
	points  int
}

func (p *countsProvider) Query(_ context.Context, q metrics.Query) (metrics.Series, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := q.Start
	if p.replay {
		from = from.Add(-time.Minute)
	}
	var times []int64
	for t := from; !t.After(q.End); t = t.Add(q.Step) {
		times = append(times, t.UnixMilli())
		if p.fetched[q.Text] == nil {
			p.fetched[q.Text] = map[int64]int{}
		}
		p.fetched[q.Text][t.UnixMilli()]++
	}
	canary := strings.HasSuffix(q.Text, "-canary")
	value := func(v float64) metrics.Stream {
		pts := make([]metrics.Point, len(times))
		for i, t := range times {
			pts[i] = metrics.Point{T: t, V: v}
		}
		p.points += len(pts)
		return metrics.Stream{Points: pts}
	}
	switch {
	case strings.HasPrefix(q.Text, "err-") && canary:
		return metrics.Series{Streams: []metrics.Stream{value(1)}}, nil
	case strings.HasPrefix(q.Text, "err-"):
		return metrics.Series{Streams: []metrics.Stream{value(2)}}, nil
	case strings.HasPrefix(q.Text, "req-") && canary:
		return metrics.Series{Streams: []metrics.Stream{value(50)}}, nil
	case strings.HasPrefix(q.Text, "req-"):
		return metrics.Series{Streams: []metrics.Stream{value(100)}}, nil
	}
	var out metrics.Series
	for _, b := range []struct {
		le string
		v  float64
	}{{"0.1", 10}, {"0.5", 20}, {"+Inf", 20}} {
		st := value(b.v)
		st.Labels = map[string]string{"le": b.le}
		out.Streams = append(out.Streams, st)
	}
	return out, nil
}

type seqHarness struct {
	t     *testing.T
	clock *fakeClock
	path  string
	cfg   *config.Config
	prov  *countsProvider
	// provider, when set, is what the scheduler queries instead of prov.
	provider metrics.Provider
	store    analysis.Store
	sched    *analysis.Scheduler
}

func (h *seqHarness) start() {
	h.t.Helper()
	st, err := boltstore.Open(h.path, time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = st
	h.sched = analysis.NewScheduler(analysis.Options{
		Store: st, Clock: h.clock, Logger: zaptest.NewLogger(h.t), Metrics: analysis.NewMetrics(prometheus.NewRegistry()),
		Workers: 2, MaxConsecutiveErrors: 3, QueryTimeout: time.Second,
	})
	var prov metrics.Provider = h.prov
	if h.provider != nil {
		prov = h.provider
	}
	h.sched.SetEnv(&analysis.Env{Config: h.cfg, Providers: map[string]metrics.Provider{"fake": prov}})
	if err := h.sched.Start(t0ctx(h.t)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *seqHarness) stop() {
	if h.sched == nil {
		return
	}
	h.sched.Stop(context.Background())
	h.store.Close()
	h.sched = nil
}

func t0ctx(t *testing.T) context.Context { return t.Context() }

func (h *seqHarness) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		h.clock.Advance(10 * time.Second)
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *seqHarness) get(id string) *analysis.Detail {
	h.t.Helper()
	d, err := h.sched.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// TestSequentialStateSurvivesRestart: a counts and a histogram metric fetch each step
// once, keep their evidence in the store with the interval, resume it after a restart
// (the scheduler stopped between two intervals, its store closed and reopened), and
// count every step of the lifetime exactly once, also when the provider returns steps
// already counted.
func TestSequentialStateSurvivesRestart(t *testing.T) {
	// 5m lifetime, 1m warmup, 5s steps: 49 steps from the warmup's end to the last
	// interval's end, both included.
	const steps = 49
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("replay=%v", replay), func(t *testing.T) {
			cfg, err := config.Parse([]byte(seqConfig), testKinds())
			if err != nil {
				t.Fatal(err)
			}
			h := &seqHarness{t: t, clock: newFakeClock(), path: filepath.Join(t.TempDir(), "canaryd.db"), cfg: cfg,
				prov: &countsProvider{replay: replay, fetched: map[string]map[int64]int{}}}
			h.start()
			t.Cleanup(h.stop)
			c, err := h.sched.Register(t.Context(), analysis.Registration{
				Name: "web", Analysis: "seq",
				Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
			})
			if err != nil {
				t.Fatal(err)
			}
			h.until("two intervals", func() bool { return len(h.get(c.ID).Results) >= 2 })
			mid := h.get(c.ID)
			if len(mid.Sequential) != 2 || mid.Sequential["errors"] == nil || mid.Sequential["latency"] == nil {
				t.Fatalf("running canary's stored evidence: %v, want errors and latency", mid.Sequential)
			}
			h.stop()
			h.clock.Advance(90 * time.Second) // down across an interval: caught up at the restart
			h.start()
			h.until("the canary to end", func() bool { return h.get(c.ID).Status.Final() })
			d := h.get(c.ID)
			if d.Status != analysis.StatusPass {
				t.Fatalf("status %s (%s), want pass", d.Status, d.Reason)
			}
			if d.Sequential != nil {
				t.Errorf("ended canary keeps its evidence: %d states", len(d.Sequential))
			}
			last := d.Results[len(d.Results)-1]
			byName := map[string]judge.MetricResult{}
			for _, r := range last.Metrics {
				byName[r.Name] = r
			}
			e, l := byName["errors"], byName["latency"]
			if e.Kind != judge.KindCounts || e.Sequential.Steps != steps || e.Baseline.N != steps {
				t.Errorf("errors: kind %s, %d steps (%d used), want counts over %d", e.Kind, e.Sequential.Steps, e.Baseline.N, steps)
			}
			want := fmt.Sprintf("(%d of %d requests vs %d of %d)", steps, 50*steps, 2*steps, 100*steps)
			if !strings.Contains(e.Reason, want) {
				t.Errorf("errors reason %q, want the totals %s", e.Reason, want)
			}
			if l.Kind != judge.KindHistogram || l.Sequential.Steps != steps || l.Classification != judge.ClassPass {
				t.Errorf("latency: kind %s %s, %d steps, want a histogram pass over %d: %s", l.Kind, l.Classification, l.Sequential.Steps, steps, l.Reason)
			}
			// The report's series: one error rate per step and cohort, stored once.
			series := analysis.Series(d.Results)
			if len(series) != 1 || series[0].Metric != "errors" || len(series[0].Baseline) != steps || len(series[0].Canary) != steps {
				t.Errorf("stored points: %+v", series)
			}
			if replay {
				return
			}
			// Each query fetched each step once: exactly what one query over the
			// judged lifetime returns.
			for text, ts := range h.prov.fetched {
				if len(ts) != steps {
					t.Errorf("%s: %d distinct steps fetched, want %d", text, len(ts), steps)
				}
				for at, n := range ts {
					if n != 1 {
						t.Errorf("%s: step %s fetched %d times", text, time.UnixMilli(at).UTC(), n)
					}
				}
			}
			if want := steps * (4 + 2*3); h.prov.points != want {
				t.Errorf("points fetched %d, want %d (one lifetime)", h.prov.points, want)
			}
		})
	}
}

// TestSequentialStateDroppedOnAbort: a canary ended by a human keeps no evidence either.
func TestSequentialStateDroppedOnAbort(t *testing.T) {
	cfg, err := config.Parse([]byte(seqConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	h := &seqHarness{t: t, clock: newFakeClock(), path: filepath.Join(t.TempDir(), "canaryd.db"), cfg: cfg,
		prov: &countsProvider{fetched: map[string]map[int64]int{}}}
	h.start()
	t.Cleanup(h.stop)
	c, err := h.sched.Register(t.Context(), analysis.Registration{
		Name: "web", Analysis: "seq",
		Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.until("one interval", func() bool { return len(h.get(c.ID).Sequential) == 2 })
	if _, err := h.sched.Abort(t.Context(), c.ID, "test", false); err != nil {
		t.Fatal(err)
	}
	if d := h.get(c.ID); d.Status != analysis.StatusAborted || d.Sequential != nil {
		t.Errorf("aborted canary: %s with %d states", d.Status, len(d.Sequential))
	}
}

// alignedProvider is countsProvider on a backend whose buckets are on multiples of unit
// since the epoch, as Datadog's rollups and CloudWatch's periods are.
type alignedProvider struct {
	*countsProvider
	unit time.Duration
	// whole is what WholeSteps says (nil: each step's counts are whole).
	whole error
}

func (p alignedProvider) StepAlignment(time.Duration) time.Duration { return p.unit }

func (p alignedProvider) WholeSteps() error { return p.whole }

// TestSequentialOffTheProvidersGrid: on a provider that aligns its buckets to the epoch,
// a canary registered without a start starts at the first moment whose steps (start
// plus warmup) are on that grid; one given a start off it is refused, naming the field;
// and one that is off it anyway (its provider reloaded to one with a grid) gets its
// counts and histogram metrics in error, naming the provider and the grid, never judged
// on buckets that straddle two steps.
func TestSequentialOffTheProvidersGrid(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, "2026-03-01T"+s+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		// now is the clock at registration, start the registration's (zero: none).
		now, start string
		unit       time.Duration
		// reload is the unit of the provider the config is reloaded to after the
		// registration (0: no reload).
		reload    time.Duration
		wantStart string
		want      analysis.Status
		wantErr   string
		// whole is the provider's WholeSteps; wantReason the metrics' reason after their
		// name (default: the grid's).
		whole      error
		wantReason string
	}{
		{name: "start on the minute", now: "12:00:20", start: "12:00:00", unit: time.Minute, wantStart: "12:00:00", want: analysis.StatusPass},
		{name: "no start, 20 s off the minute: the first start on the grid", now: "12:00:20", unit: time.Minute, wantStart: "12:01:00", want: analysis.StatusPass},
		{name: "no start, a warmup of 1m and 30 s buckets", now: "12:00:10", unit: 30 * time.Second, wantStart: "12:00:30", want: analysis.StatusPass},
		{name: "a start 20 s off the minute: refused", now: "12:00:30", start: "12:00:20", unit: time.Minute,
			wantErr: `start: 2026-03-01T12:00:20Z plus the warmup (1m0s) is off provider "fake"'s grid: its 5s buckets are on multiples of 1m0s since the epoch, and metric "errors" (counts) can only be judged on them; give a start 20s earlier or 40s later`},
		{name: "a start 20 s off the minute, 10 s buckets", now: "12:00:30", start: "12:00:20", unit: 10 * time.Second, wantStart: "12:00:20", want: analysis.StatusPass},
		{name: "a provider on the query's own grid", now: "12:00:20", unit: 0, wantStart: "12:00:20", want: analysis.StatusPass},
		{name: "reloaded onto a provider with a grid the canary is off", now: "12:00:20", unit: 0, reload: time.Minute, wantStart: "12:00:20", want: analysis.StatusError},
		{name: "a provider that does not answer whole steps", now: "12:00:00", unit: time.Minute, wantStart: "12:00:00", want: analysis.StatusError,
			whole: errors.New("its buckets are cut at the window's end"), wantReason: `provider "fake": its buckets are cut at the window's end`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(seqConfig), testKinds())
			if err != nil {
				t.Fatal(err)
			}
			prov := &countsProvider{fetched: map[string]map[int64]int{}}
			h := &seqHarness{t: t, clock: newFakeClock(), path: filepath.Join(t.TempDir(), "canaryd.db"), cfg: cfg, prov: prov,
				provider: alignedProvider{prov, tc.unit, tc.whole}}
			h.clock.Advance(at(tc.now).Sub(h.clock.Now()))
			h.start()
			t.Cleanup(h.stop)
			reg := analysis.Registration{
				Name: "web", Analysis: "seq",
				Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
			}
			if tc.start != "" {
				reg.Start = at(tc.start)
			}
			c, err := h.sched.Register(t.Context(), reg)
			if tc.wantErr != "" {
				var ie *analysis.InputError
				if !errors.As(err, &ie) || ie.Field != "start" || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want an input error\n%s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.Start.Equal(at(tc.wantStart)) {
				t.Errorf("start %s, want %s", c.Start.UTC().Format(time.TimeOnly), tc.wantStart)
			}
			if tc.reload > 0 {
				h.sched.SetEnv(&analysis.Env{Config: h.cfg, Providers: map[string]metrics.Provider{"fake": alignedProvider{prov, tc.reload, nil}}})
			}
			h.until("the canary to end", func() bool { return h.get(c.ID).Status.Final() })
			d := h.get(c.ID)
			if d.Status != tc.want {
				t.Fatalf("status %s (%s), want %s", d.Status, d.Reason, tc.want)
			}
			if tc.want == analysis.StatusPass {
				return
			}
			for _, r := range d.Results[0].Metrics {
				want := r.Name + ": " + tc.wantReason
				if tc.wantReason == "" {
					want = fmt.Sprintf(`%s: provider "fake" puts its 5s buckets on multiples of 1m0s since the epoch, and this canary's steps start at 2026-03-01T12:01:20Z (its start plus the warmup), off that grid`, r.Name)
				}
				if r.Classification != judge.ClassError || !strings.HasPrefix(r.Reason, want) {
					t.Errorf("%s: %s %q, want an error starting %q", r.Name, r.Classification, r.Reason, want)
				}
			}
			if prov.points != 0 {
				t.Errorf("%d points fetched: an off-grid canary should not query", prov.points)
			}
		})
	}
}
