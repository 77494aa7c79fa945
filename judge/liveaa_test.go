package judge_test

// The judges on data our generators did not make (issue 14): healthy (A/A) and regressed
// canaries recorded from real processes through Debian's real Prometheus. Recorded with
//
//	scripts/record-live.sh judge/testdata/live/live-N.json.gz 36m
//
// (scripts/liverec: 16 apps, each cohort its own net/http + client_golang process, a
// shared downstream, Poisson load with a shared swing, scraped every 1s, read back at a
// 5s step as the counters themselves and as increase(...[5s]), and with the Mann-Whitney
// preset's PromQL at 15s). The counters' differences are what the shipped golden-signals
// PromQL, ((x - x offset STEP) >= 0 or x), returns: the recordings have no counter reset
// and no series that appears mid-way (the servers create every code's series at start),
// where the two would differ; recordings made since the recorder has the shipped_*
// queries hold that PromQL's answers too, and the replay reads those. The replay slices each recording into canaries as the
// scheduler judges them and feeds them through the public API with the presets' specs.

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
)

// The canary windows, in steps of the recording (5s): the golden-signals preset's shape
// (lifetime 120 steps, warmup 8, an interval of 4), 10 minutes at this step.
const (
	liveLifetime = 120
	liveWarmup   = 8
	liveInterval = 4
	// liveStagger is how far apart staggered windows start (2 minutes).
	liveStagger = 24
	// liveMWStep is the Mann-Whitney preset's step over the 5s step.
	liveMWStep = 3
)

// liveRecording is scripts/liverec's file (nulls decode as nil).
type liveRecording struct {
	Command     string    `json:"command"`
	Start       time.Time `json:"start"`
	StepSeconds float64   `json:"step_seconds"`
	Steps       int       `json:"steps"`
	LE          []string  `json:"le"`
	Dropped     int64     `json:"dropped_arrivals"`
	Apps        []liveApp `json:"apps"`
}

type liveApp struct {
	App         string  `json:"app"`
	Scenario    string  `json:"scenario"`
	Rate        float64 `json:"rate"`
	CanaryShare float64 `json:"canary_share"`
	// OnsetMinutes is when the canary process started regressing, in minutes after the
	// recorder's start, one step before Start (0: never).
	OnsetMinutes float64    `json:"onset_minutes"`
	Baseline     liveCohort `json:"baseline"`
	Canary       liveCohort `json:"canary"`
	MW           struct {
		Baseline liveMW `json:"baseline"`
		Canary   liveMW `json:"canary"`
	} `json:"mw"`
}

type liveCohort struct {
	Errors   []*float64   `json:"errors"`
	Requests []*float64   `json:"requests"`
	Buckets  [][]*float64 `json:"buckets"`
	Raw      struct {
		Errors   []*float64   `json:"errors"`
		Requests []*float64   `json:"requests"`
		Buckets  [][]*float64 `json:"buckets"`
	} `json:"raw"`
	// Shipped holds the presets' PromQL's answers, in the recordings made after e5bbd4e.
	Shipped struct {
		Errors   []*float64   `json:"errors"`
		Requests []*float64   `json:"requests"`
		Buckets  [][]*float64 `json:"buckets"`
	} `json:"shipped"`
}

type liveMW struct {
	ErrorRate []*float64 `json:"error_rate"`
	P50       []*float64 `json:"p50"`
	P99       []*float64 `json:"p99"`
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func loadLive(t *testing.T) map[string]*liveRecording {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "live", "*.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recording in testdata/live (scripts/record-live.sh makes one)")
	}
	out := map[string]*liveRecording{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var r liveRecording
		if err := json.NewDecoder(zr).Decode(&r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
		if r.StepSeconds != 5 || len(r.LE) == 0 || r.LE[len(r.LE)-1] != "+Inf" {
			t.Fatalf("%s: step %vs, le %v: not a liverec recording at 5s", f, r.StepSeconds, r.LE)
		}
		out[filepath.Base(f)] = &r
	}
	return out
}

// presetAnalysis parses one analysis of a shipped config file as a canary stores it.
func presetAnalysis(t *testing.T, file, name string) *config.Analysis {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "configs", file))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Analyses map[string]any `yaml:"analyses"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	block, err := yaml.Marshal(doc.Analyses[name])
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.ParseAnalysis(name, block)
	if err != nil {
		t.Fatalf("%s: analysis %s: %v", file, name, err)
	}
	return a
}

// liveSource says where a replay's count and bucket steps come from.
type liveSource int

const (
	fromDifference liveSource = iota // the counters' differences: the shipped PromQL
	fromIncrease                     // increase(...[STEP]), the presets' PromQL before e5bbd4e
)

// countStep is step k of an app's counts: NaN for a cohort the query left empty.
func countStep(rec *liveRecording, a *liveApp, k int, src liveSource) judge.CountStep {
	co := func(c *liveCohort) judge.CountCohort {
		if src == fromDifference {
			if len(c.Shipped.Requests) > 0 {
				return judge.CountCohort{Errors: val(c.Shipped.Errors[k]), Requests: val(c.Shipped.Requests[k])}
			}
			return judge.CountCohort{Errors: delta(c.Raw.Errors, k), Requests: delta(c.Raw.Requests, k)}
		}
		return judge.CountCohort{Errors: val(c.Errors[k]), Requests: val(c.Requests[k])}
	}
	return judge.CountStep{Time: stepTime(rec, k), Baseline: co(&a.Baseline), Canary: co(&a.Canary)}
}

// delta is a counter's increase into step k; NaN when a value is missing or it went down.
func delta(s []*float64, k int) float64 {
	if k == 0 {
		return math.NaN()
	}
	d := val(s[k]) - val(s[k-1])
	if d < 0 {
		return math.NaN()
	}
	return d
}

func stepTime(rec *liveRecording, k int) time.Time {
	return rec.Start.Add(time.Duration(k) * time.Duration(rec.StepSeconds) * time.Second)
}

func histStep(rec *liveRecording, a *liveApp, k int, src liveSource) judge.HistogramStep {
	co := func(c *liveCohort) []judge.Bucket {
		var le []string
		var counts []float64
		for j, l := range rec.LE {
			var v float64
			switch {
			case src == fromDifference && len(c.Shipped.Buckets) > 0:
				v = val(c.Shipped.Buckets[k][j])
			case src == fromDifference:
				v = math.NaN()
				if k > 0 {
					v = val(c.Raw.Buckets[k][j]) - val(c.Raw.Buckets[k-1][j])
				}
			default:
				v = val(c.Buckets[k][j])
			}
			if math.IsNaN(v) {
				continue // the query returned no point for this le
			}
			le, counts = append(le, l), append(counts, v)
		}
		if len(le) == 0 {
			return nil
		}
		b, err := judge.ParseBuckets(le, counts)
		if err != nil {
			panic(err) // the recorder wrote these le values
		}
		return b
	}
	return judge.HistogramStep{Time: stepTime(rec, k), Baseline: co(&a.Baseline), Canary: co(&a.Canary)}
}

// liveWindow is one canary: its first step after the start, and when its regression
// started (relative to its start, in steps: ≤ 0 from the start, > lifetime never).
type liveWindow struct {
	file  string
	app   *liveApp
	s0    int
	onset int
}

func (w liveWindow) healthy() bool { return w.onset > liveLifetime }

// liveOutcome is a window's replay: the first failing interval's end (in steps from the
// start, 0 none) for the verdict and for each metric.
type liveOutcome struct {
	failAt   int
	metricAt map[string]int
}

// replaySequential judges window w with the golden-signals preset's counts and
// histogram metrics at every interval, as the scheduler feeds them (only the steps since
// the previous interval, from the end of the warmup on).
func replaySequential(t *testing.T, rec *liveRecording, a *config.Analysis, w liveWindow, src liveSource) liveOutcome {
	t.Helper()
	out := liveOutcome{metricAt: map[string]int{}}
	type state interface {
		Result(judge.MetricSpec) judge.MetricResult
	}
	states := make([]state, len(a.Metrics))
	specs := make([]judge.MetricSpec, len(a.Metrics))
	for i, m := range a.Metrics {
		specs[i] = m.Spec
		// The scheduler's horizon: the judged part of the lifetime, in steps.
		specs[i].Horizon = liveLifetime - liveWarmup
		var err error
		switch m.Spec.Kind {
		case judge.KindCounts:
			states[i], err = judge.NewCountState(specs[i])
		case judge.KindHistogram:
			states[i], err = judge.NewHistogramState(specs[i])
		default:
			t.Fatalf("metric %s: %s is not a sequential judge", m.Name, m.Spec.Kind)
		}
		if err != nil {
			t.Fatalf("metric %s: %v", m.Name, err)
		}
	}
	next := w.s0 + liveWarmup // the first step judged: the one at start + warmup
	for end := liveInterval; end <= liveLifetime; end += liveInterval {
		if end <= liveWarmup {
			continue // an interval inside the warmup is not judged
		}
		results := make([]judge.MetricResult, len(a.Metrics))
		for i := range a.Metrics {
			switch st := states[i].(type) {
			case *judge.CountState:
				var steps []judge.CountStep
				for k := next; k <= w.s0+end; k++ {
					s := countStep(rec, w.app, k, src)
					if isNaNCohort(s.Baseline) && isNaNCohort(s.Canary) {
						continue // no cohort has a point: the query returns no timestamp
					}
					steps = append(steps, s)
				}
				if err := st.Add(steps); err != nil {
					t.Fatalf("%s %s window %d: counts: %v", w.file, w.app.App, w.s0, err)
				}
			case *judge.HistogramState:
				var steps []judge.HistogramStep
				for k := next; k <= w.s0+end; k++ {
					s := histStep(rec, w.app, k, src)
					if s.Baseline == nil && s.Canary == nil {
						continue
					}
					steps = append(steps, s)
				}
				if err := st.Add(steps); err != nil {
					t.Fatalf("%s %s window %d: histogram: %v", w.file, w.app.App, w.s0, err)
				}
			}
			results[i] = states[i].Result(specs[i])
			if results[i].Classification == judge.ClassError {
				t.Fatalf("%s %s window %d: %s", w.file, w.app.App, w.s0, results[i].Reason)
			}
			if results[i].Failed() && out.metricAt[specs[i].Name] == 0 {
				out.metricAt[specs[i].Name] = end
			}
		}
		next = w.s0 + end + 1
		if s := judge.Score(results, a.Groups, a.Score); s.Verdict == judge.VerdictFail && out.failAt == 0 {
			out.failAt = end
		}
	}
	return out
}

// largestJump replays one metric of window w step by step up to step end and says which
// step multiplied its e-process most: a false fail carried by one step shows there.
func largestJump(t *testing.T, rec *liveRecording, a *config.Analysis, w liveWindow, metric string, end int) string {
	t.Helper()
	i := slices.IndexFunc(a.Metrics, func(m config.Metric) bool { return m.Name == metric })
	spec := a.Metrics[i].Spec
	spec.Horizon = liveLifetime - liveWarmup
	var add func(k int) judge.SequentialResult
	switch spec.Kind {
	case judge.KindCounts:
		st, err := judge.NewCountState(spec)
		if err != nil {
			t.Fatal(err)
		}
		add = func(k int) judge.SequentialResult {
			_ = st.Add([]judge.CountStep{countStep(rec, w.app, k, fromDifference)})
			return st.Result(spec).Sequential
		}
	default:
		st, err := judge.NewHistogramState(spec)
		if err != nil {
			t.Fatal(err)
		}
		add = func(k int) judge.SequentialResult {
			_ = st.Add([]judge.HistogramStep{histStep(rec, w.app, k, fromDifference)})
			return st.Result(spec).Sequential
		}
	}
	prev, best, at := 1.0, 0.0, 0
	var last judge.SequentialResult
	for k := w.s0 + liveWarmup; k <= w.s0+end; k++ {
		last = add(k)
		if r := last.EValueNow / prev; r > best {
			best, at = r, k
		}
		prev = last.EValueNow
	}
	return fmt.Sprintf("e-value %.4g (threshold %.4g, boundary %g); the largest one-step jump ×%.3g at recording step %d",
		last.EValue, last.Threshold, last.Boundary, best, at)
}

func isNaNCohort(c judge.CountCohort) bool { return math.IsNaN(c.Errors) && math.IsNaN(c.Requests) }

// replayMW judges window w with the Mann-Whitney preset's metrics on its own series (15s
// step, rate over 1m): at every interval the whole window since the warmup, as the
// scheduler does for those judges. The p99 ratio judge (for: 10m) cannot fail within a
// 10-minute canary's 9m20s after warmup and is left out.
func replayMW(rec *liveRecording, a *config.Analysis, w liveWindow) liveOutcome {
	out := liveOutcome{metricAt: map[string]int{}}
	looks := 0
	for end := liveInterval; end <= liveLifetime; end += liveInterval {
		if end > liveWarmup {
			looks++
		}
	}
	for end := liveInterval; end <= liveLifetime; end += liveInterval {
		if end <= liveWarmup {
			continue
		}
		var results []judge.MetricResult
		for _, m := range a.Metrics {
			if m.Spec.Kind != judge.KindMannWhitney {
				continue
			}
			var b, c []float64
			for k := w.s0 + liveWarmup; k <= w.s0+end; k++ {
				if k%liveMWStep != 0 {
					continue
				}
				j := k / liveMWStep
				bs, cs := mwSeries(&w.app.MW.Baseline, m.Name), mwSeries(&w.app.MW.Canary, m.Name)
				if j >= len(bs) {
					break
				}
				if v := val(bs[j]); !math.IsNaN(v) {
					b = append(b, v)
				}
				if v := val(cs[j]); !math.IsNaN(v) {
					c = append(c, v)
				}
			}
			spec := m.Spec
			spec.Looks = looks
			r := judge.Classify(spec, b, c)
			results = append(results, r)
			if r.Failed() && out.metricAt[m.Name] == 0 {
				out.metricAt[m.Name] = end
			}
		}
		if s := judge.Score(results, a.Groups, a.Score); s.Verdict == judge.VerdictFail && out.failAt == 0 {
			out.failAt = end
		}
	}
	return out
}

func mwSeries(c *liveMW, metric string) []*float64 {
	switch metric {
	case "error-rate":
		return c.ErrorRate
	case "p50-latency":
		return c.P50
	}
	return c.P99
}

// liveWindows slices every recording: windows start every stride steps (liveLifetime:
// disjoint; liveStagger: staggered, overlapping).
func liveWindows(recs map[string]*liveRecording, stride int) []liveWindow {
	names := make([]string, 0, len(recs))
	for n := range recs {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []liveWindow
	for _, n := range names {
		rec := recs[n]
		for i := range rec.Apps {
			a := &rec.Apps[i]
			for s0 := 0; s0+liveLifetime < rec.Steps; s0 += stride {
				onset := liveLifetime + 1
				if k := onsetStep(rec, a); k >= 0 {
					onset = k - s0
				}
				out = append(out, liveWindow{file: n, app: a, s0: s0, onset: min(onset, liveLifetime+1)})
			}
		}
	}
	return out
}

// onsetStep is the first step of a's recording with regressed requests (−1: none): step
// k covers (Start+(k−1)·Step, Start+k·Step], and the onset is OnsetMinutes after
// Start − Step.
func onsetStep(rec *liveRecording, a *liveApp) int {
	if a.OnsetMinutes <= 0 {
		return -1
	}
	return int(math.Floor((a.OnsetMinutes*60-rec.StepSeconds)/rec.StepSeconds)) + 1
}

// wilson is the Wilson score interval (95%) of k successes in n.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p, nf := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nf
	c := (p + z*z/(2*nf)) / den
	h := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return max(c-h, 0), min(c+h, 1)
}

// liveTally counts one judge's outcomes over a set of windows.
type liveTally struct {
	healthy, falseFails int
	// Per regression scenario: windows with regressed steps to judge, caught, and the
	// detection times (steps after max(onset, warmup)).
	regressed map[string]int
	caught    map[string]int
	times     map[string][]int
	// Failures of a regression window before its onset count as false fails too.
	early int
}

func newTally() *liveTally {
	return &liveTally{regressed: map[string]int{}, caught: map[string]int{}, times: map[string][]int{}}
}

func (l *liveTally) add(w liveWindow, o liveOutcome) {
	if w.healthy() {
		l.healthy++
		if o.failAt > 0 {
			l.falseFails++
		}
		return
	}
	from := max(w.onset, liveWarmup)
	if from >= liveLifetime {
		return // the regression starts in the last interval: nothing to judge
	}
	if o.failAt > 0 && o.failAt < w.onset {
		l.early++
		return
	}
	key := w.app.Scenario + " " + w.app.App
	l.regressed[key]++
	if o.failAt > 0 {
		l.caught[key]++
		l.times[key] = append(l.times[key], o.failAt-from)
	}
}

func medianInt(v []int) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

func (l *liveTally) String() string {
	var b strings.Builder
	lo, hi := wilson(l.falseFails, l.healthy)
	fmt.Fprintf(&b, "A/A false fails %d/%d (%.1f%%, Wilson 95%% %.1f–%.1f%%)", l.falseFails, l.healthy,
		100*float64(l.falseFails)/float64(max(l.healthy, 1)), 100*lo, 100*hi)
	if l.early > 0 {
		fmt.Fprintf(&b, ", %d regression windows failed before their onset", l.early)
	}
	sc := make([]string, 0, len(l.regressed))
	for s := range l.regressed {
		sc = append(sc, s)
	}
	slices.Sort(sc)
	for _, s := range sc {
		fmt.Fprintf(&b, "\n\t%-24s caught %2d/%2d, median %5.1f steps (%4.1f intervals) after onset/warmup",
			s, l.caught[s], l.regressed[s], medianInt(l.times[s]), medianInt(l.times[s])/liveInterval)
	}
	return b.String()
}

// TestLiveRecordings replays the recordings. It asserts, on disjoint windows (whose
// false fails are independent enough to count), that the sequential preset's A/A false
// fails are no more than alpha allows (the Wilson interval's lower end is at most
// alpha), and that errors ×10 at 20 req/s or more is caught in every window with at
// least 5 minutes of it to judge; the staggered windows (more canaries, overlapping)
// and the Mann-Whitney preset are reported.
func TestLiveRecordings(t *testing.T) {
	recs := loadLive(t)
	seq := presetAnalysis(t, "golden-signals.yml", "golden-signals")
	mw := presetAnalysis(t, "golden-signals-mannwhitney.yml", "golden-signals")
	alpha := 1.0
	for _, m := range seq.Metrics {
		alpha = min(alpha, m.Spec.Alpha)
	}
	for n, r := range recs {
		t.Logf("%s: %d steps from %s, %d apps, %d arrivals dropped; %s", n, r.Steps, r.Start.Format(time.RFC3339), len(r.Apps), r.Dropped, r.Command)
	}
	for _, tc := range []struct {
		name   string
		stride int
	}{{"disjoint", liveLifetime}, {"staggered", liveStagger}} {
		t.Run(tc.name, func(t *testing.T) {
			windows := liveWindows(recs, tc.stride)
			seqT, incT, mwT := newTally(), newTally(), newTally()
			var missedX10 []string
			for _, w := range windows {
				rec := recs[w.file]
				o := replaySequential(t, rec, seq, w, fromDifference)
				seqT.add(w, o)
				oi := replaySequential(t, rec, seq, w, fromIncrease)
				incT.add(w, oi)
				if w.healthy() && oi.failAt > 0 {
					t.Logf("A/A false fail (increase()): %s %s window at step %d: interval ending at step %d (%v)",
						w.file, w.app.App, w.s0, oi.failAt, oi.metricAt)
				}
				om := replayMW(rec, mw, w)
				mwT.add(w, om)
				if w.healthy() && om.failAt > 0 {
					t.Logf("A/A false fail (Mann-Whitney preset): %s %s window at step %d: interval ending at step %d (%v)",
						w.file, w.app.App, w.s0, om.failAt, om.metricAt)
				}
				if w.healthy() && o.failAt > 0 {
					t.Logf("A/A false fail: %s %s (%g req/s, canary %g%%) window at step %d: interval ending at step %d (%v)",
						w.file, w.app.App, w.app.Rate, 100*w.app.CanaryShare, w.s0, o.failAt, o.metricAt)
					for name, at := range o.metricAt {
						t.Logf("  %s: %s", name, largestJump(t, rec, seq, w, name, at))
					}
				}
				if w.app.Scenario == "errors-x10" && w.app.Rate >= 20 && liveLifetime-max(w.onset, liveWarmup) >= 60 {
					for src, r := range map[string]liveOutcome{"counters' difference": o, "increase()": oi} {
						if r.metricAt["error-rate"] == 0 {
							missedX10 = append(missedX10, fmt.Sprintf("%s: %s %s window at step %d (onset %d)", src, w.file, w.app.App, w.s0, w.onset))
						}
					}
				}
			}
			t.Logf("sequential preset (shipped PromQL: the counters' difference over the 5s step): %s", seqT)
			t.Logf("sequential preset on increase(...[5s]) (×1.25 over 1s scrapes): %s", incT)
			t.Logf("Mann-Whitney preset (rate[1m] at 15s; error-rate and p50): %s", mwT)
			if tc.stride != liveLifetime {
				return // overlapping windows: reported, not asserted
			}
			for src, l := range map[string]*liveTally{"counters' difference": seqT, "increase()": incT} {
				if lo, _ := wilson(l.falseFails+l.early, l.healthy+l.early); lo > alpha {
					t.Errorf("A/A (%s): %d false fails in %d healthy windows (+%d before an onset): the Wilson 95%% interval starts at %.2f%%, above alpha %.2f%%",
						src, l.falseFails, l.healthy, l.early, 100*lo, 100*alpha)
				}
			}
			if len(missedX10) > 0 {
				t.Errorf("errors ×10 at ≥ 20 req/s missed by the error-rate metric in: %s", strings.Join(missedX10, "; "))
			}
			if seqT.regressed["errors-x10 err10-h"]+seqT.regressed["errors-x10 err10-m"] == 0 {
				t.Error("no errors ×10 window to judge: the recordings are not liverec's")
			}
		})
	}
}
