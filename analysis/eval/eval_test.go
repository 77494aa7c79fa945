package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

func goldenSignals(t *testing.T) Target {
	t.Helper()
	ts, err := LoadFiles([]string{"../../configs/golden-signals-mannwhitney.yml"}, testKinds())
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		if tg.Name == "golden-signals" {
			return tg
		}
	}
	t.Fatal("configs/golden-signals-mannwhitney.yml has no golden-signals analysis")
	return Target{}
}

func scenarios(t *testing.T, names ...string) []Scenario {
	t.Helper()
	var out []Scenario
	for _, s := range DefaultScenarios() {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	if len(out) != len(names) {
		t.Fatalf("scenarios %v: found %d", names, len(out))
	}
	return out
}

// TestShippedDefaults is the small eval CI runs: the golden-signals preset as shipped,
// through the real scheduler and judge, must keep healthy canaries passing and catch an
// error rate ×10 at once. A judge change that breaks either fails here.
func TestShippedDefaults(t *testing.T) {
	gs := goldenSignals(t)
	res, err := Run(context.Background(), Options{
		Kinds:   testKinds(),
		Targets: []Target{gs}, Scenarios: scenarios(t, "aa", "errors-x10"),
		RunsAA: 200, RunsAB: 40, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := Summarize(res)
	if len(rep.Rows) != 2 {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	aa, x10 := rep.Rows[0], rep.Rows[1]
	t.Logf("A/A: %d of %d failed, %d marginal; ×10: %d of %d failed, detect median %s p90 %s",
		aa.Fail.K, aa.Runs, aa.Marginal.K, x10.Fail.K, x10.Runs, x10.DetectMedian, x10.DetectP90)
	// Issue 9 asks for <= 1% over 2,000 runs; 200 runs at 1% give 2 expected failures, so
	// the bound here is the one a 1% rate exceeds with probability < 5% (6 of 200).
	if aa.Runs != 200 || aa.Fail.K > 5 {
		t.Errorf("A/A false fails: %d of %d, want at most 5", aa.Fail.K, aa.Runs)
	}
	if aa.Marginal.K > 5 {
		t.Errorf("A/A marginal: %d of %d, want at most 5", aa.Marginal.K, aa.Runs)
	}
	if x10.Runs != 40 || x10.Fail.K != x10.Runs {
		t.Errorf("error rate ×10: %d of %d failed, want all", x10.Fail.K, x10.Runs)
	}
	for _, o := range res.Outcomes {
		if o.Scenario == "errors-x10" && (!o.Detected || o.Detect > 2*gs.Interval) {
			t.Errorf("error rate ×10 run %d: detected %v after %s, want within two intervals (%s)", o.Run, o.Detected, o.Detect, 2*gs.Interval)
		}
	}
}

// TestDeterministic: the same seed gives the same outcomes, whatever the concurrency.
func TestDeterministic(t *testing.T) {
	run := func(workers, wave int) []Outcome {
		res, err := Run(context.Background(), Options{
			Kinds:   testKinds(),
			Targets: []Target{Runbook()}, Scenarios: scenarios(t, "aa-bursty", "errors-x5-step"),
			RunsAA: 12, RunsAB: 12, Seed: 5, Workers: workers, Wave: wave,
		})
		if err != nil {
			t.Fatal(err)
		}
		out := res.Outcomes
		slices.SortFunc(out, func(a, b Outcome) int {
			return strings.Compare(a.Scenario, b.Scenario)*1000 + (a.Run - b.Run)
		})
		return out
	}
	a, b := run(1, 5), run(4, 30)
	if !slices.Equal(a, b) {
		t.Fatalf("outcomes differ between runs:\n%+v\n%+v", a, b)
	}
	onsets := map[time.Duration]bool{}
	for _, o := range a {
		if o.Scenario == "errors-x5-step" {
			onsets[o.Onset] = true
			if o.Onset < time.Minute || o.Onset > 14*time.Minute || o.Onset%time.Minute != 0 {
				t.Errorf("onset %s: want a whole minute in the first half of the 28m span", o.Onset)
			}
		}
	}
	if len(onsets) < 3 {
		t.Errorf("step onsets %v: want them spread", onsets)
	}
}

func TestWilson(t *testing.T) {
	tests := []struct {
		k, n         int
		p, low, high float64
	}{
		// R 4.2: prop.test(k, n, correct=FALSE)$conf.int.
		{0, 200, 0, 0, 0.018845326},
		{2, 200, 0.01, 0.002746658, 0.035721762},
		{50, 100, 0.5, 0.403831530, 0.596168470},
		{100, 100, 1, 0.963006502, 1},
		{0, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		r := Wilson(tc.k, tc.n)
		if math.Abs(r.P-tc.p) > 1e-9 || math.Abs(r.Low-tc.low) > 1e-8 || math.Abs(r.High-tc.high) > 1e-8 {
			t.Errorf("Wilson(%d, %d) = %+v, want %v [%v, %v]", tc.k, tc.n, r, tc.p, tc.low, tc.high)
		}
	}
}

func TestSignalFor(t *testing.T) {
	tests := []struct{ name, query, want, wantErr string }{
		{"error-rate", `sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))`, "error_rate", ""},
		{"error-rate", `sum(rate(http_requests_total{code=~"5.."}[1m]))`, "errors_per_second", ""},
		{"p99-latency", `histogram_quantile(0.99, sum by (le) (rate(x_bucket[1m])))`, "latency_p99", ""},
		{"p90", `histogram_quantile(0.9, sum by (le) (rate(x_bucket[1m])))`, "latency_p90", ""},
		{"p50-latency", `histogram_quantile(0.5, sum by (le) (rate(x_bucket[1m])))`, "latency_p50", ""},
		{"cpu", `avg(rate(container_cpu_usage_seconds_total[1m]))`, "saturation", ""},
		{"rps", `sum(rate(http_requests_total[1m]))`, "request_rate", ""},
		{"latency", `signal=latency_p90 cohort={{ .Cohort.track }}`, "latency_p90", ""},
		{"error-ratio", `avg:trace.web.errors{*}`, "errors_per_second", ""},
		{"queue-depth", `sum(queue_depth)`, "", "no synthetic signal matches"},
	}
	for _, tc := range tests {
		got, err := SignalFor(tc.name, tc.query)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("SignalFor(%s): %q %v, want error %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SignalFor(%s, %q) = %q %v, want %q", tc.name, tc.query, got, err, tc.want)
		}
	}
}

func TestNewTargetKeepsJudges(t *testing.T) {
	gs := goldenSignals(t)
	if gs.Interval != time.Minute || gs.Step != 15*time.Second || gs.Lifetime != 30*time.Minute || gs.Warmup != 2*time.Minute {
		t.Errorf("schedule: %+v", gs)
	}
	want := map[string]string{"error-rate": "error_rate", "p99-latency": "latency_p99", "p50-latency": "latency_p50"}
	for m, s := range want {
		if gs.Signals[m] != s {
			t.Errorf("metric %s: signal %q, want %q", m, gs.Signals[m], s)
		}
	}
	orig, err := config.Load("../../configs/golden-signals-mannwhitney.yml", testKinds())
	if err != nil {
		t.Fatal(err)
	}
	rewritten, err := config.ParseAnalysis("golden-signals", gs.Source)
	if err != nil {
		t.Fatal(err)
	}
	if rewritten.Provider != SimProvider || len(rewritten.OnFail) != 0 {
		t.Errorf("provider %q, on_fail %v", rewritten.Provider, rewritten.OnFail)
	}
	for i, m := range orig.Analyses["golden-signals"].Metrics {
		r := rewritten.Metrics[i]
		if r.Name != m.Name || specString(r.Spec) != specString(m.Spec) {
			t.Errorf("metric %d: judge changed by the rewrite:\n%+v\n%+v", i, m.Spec, r.Spec)
		}
		if !strings.HasPrefix(r.Query, "signal="+want[m.Name]+" ") {
			t.Errorf("metric %s: query %q", m.Name, r.Query)
		}
	}
	if rb := Runbook(); rb.Signals["error-rate"] != "error_rate" || rb.Interval != time.Minute {
		t.Errorf("runbook: %+v", rb)
	}
}

// specString prints a spec with its bounds dereferenced, for comparison.
func specString(s judge.MetricSpec) string {
	deref := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	min, max := deref(s.Min), deref(s.Max)
	s.Min, s.Max = nil, nil
	return fmt.Sprintf("%+v min=%s max=%s", s, min, max)
}

func TestParseVariant(t *testing.T) {
	gs := goldenSignals(t)
	v, err := ParseVariant("tuned=golden-signals:warmup=5m,error-rate.allowed_increase=2,p50-latency.critical=false,score={pass: 90, marginal: 70}", []Target{gs})
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.ParseAnalysis("tuned", v.Source)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "tuned" || a.Warmup != 5*time.Minute || a.Metrics[0].Spec.AllowedIncrease != 2 || a.Metrics[2].Spec.Critical ||
		a.Score.Pass != 90 || a.Score.Marginal != 70 || a.Metrics[0].Spec.AllowedDelta != 0.0025 {
		t.Errorf("variant: %+v %+v", a, a.Metrics)
	}
	for _, bad := range []struct{ spec, want string }{
		{"tuned=nope:warmup=1m", `no analysis "nope"`},
		{"tuned=golden-signals:nometric.critical=true", `no metric "nometric"`},
		{"tuned=golden-signals", "want NAME=BASE:key=value"},
		{"tuned=golden-signals:warmup=31m", "warmup: must be shorter than lifetime"},
		{"tuned=golden-signals:error-rate.allowed_increase=0.5", "allowed_increase: must be >= 1"},
	} {
		if _, err := ParseVariant(bad.spec, []Target{gs}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseVariant(%q): %v, want an error containing %q", bad.spec, err, bad.want)
		}
	}
}

// TestCacheIsTransparent: the prefix cache answers every window exactly as the provider.
func TestCacheIsTransparent(t *testing.T) {
	regs := map[string]map[string]synthetic.Regression{"c": {"latency_p99": synthetic.DefaultRegression()}}
	r := regs["c"]["latency_p99"]
	r.Autocorrelation, r.Missing, r.Ratio = 0.8, 0.1, 1.3
	regs["c"]["latency_p99"] = r
	p, err := synthetic.New(synthetic.Config{Seed: 2, Regressions: regs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := simStart.Add(2 * time.Minute)
	c := newPrefixCache(p, start, 28*time.Minute)
	for _, text := range []string{"signal=latency_p99 cohort=c streams=2", "signal=error_rate cohort=b"} {
		for _, end := range []time.Duration{0, 45 * time.Second, time.Minute, 17 * time.Minute, 28 * time.Minute, 40 * time.Minute, 3 * time.Minute} {
			q := metrics.Query{Text: text, Start: start, End: start.Add(end), Step: 15 * time.Second}
			want, err := p.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSeries(got, want) {
				t.Fatalf("%q to +%s: cached answer differs (%d vs %d points)", text, end, got.Len(), want.Len())
			}
		}
	}
	c.forget("c", "b")
	if len(c.byTrack) != 0 || len(c.series) != 0 {
		t.Errorf("forget left %d cohorts, %d series", len(c.byTrack), len(c.series))
	}
	if _, err := c.Query(context.Background(), metrics.Query{Text: "signal=nope cohort=c", Start: start, End: start, Step: time.Second}); err == nil {
		t.Error("a bad query must fail through the cache")
	}
}

func sameSeries(a, b metrics.Series) bool {
	if len(a.Streams) != len(b.Streams) {
		return false
	}
	for i := range a.Streams {
		if !slices.EqualFunc(a.Streams[i].Points, b.Streams[i].Points, func(x, y metrics.Point) bool {
			return x.T == y.T && (x.V == y.V || math.IsNaN(x.V) && math.IsNaN(y.V))
		}) {
			return false
		}
	}
	return true
}

func TestClock(t *testing.T) {
	c := NewClock(simStart)
	early, late := c.After(time.Minute), c.After(time.Hour)
	c.Set(simStart.Add(-time.Hour)) // never backwards
	if !c.Now().Equal(simStart) {
		t.Fatalf("clock went back to %v", c.Now())
	}
	c.Set(simStart.Add(2 * time.Minute))
	select {
	case at := <-early:
		if !at.Equal(simStart.Add(2 * time.Minute)) {
			t.Errorf("fired at %v", at)
		}
	default:
		t.Fatal("a waiter due before the new time did not fire")
	}
	select {
	case <-late:
		t.Fatal("a waiter due later fired")
	default:
	}
	if now := <-c.After(0); !now.Equal(c.Now()) {
		t.Errorf("After(0) = %v", now)
	}
}

// TestScenarios: every scenario builds valid provider regressions, healthy ones leave the
// two cohorts drawn alike, and regressions change the canary only.
func TestScenarios(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sc := range DefaultScenarios() {
		co := sc.Make(r, 28*time.Minute)
		cfg := synthetic.Config{Regressions: map[string]map[string]synthetic.Regression{"b": co.Baseline, "c": co.Canary}}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", sc.Name, err)
		}
		same := len(co.Baseline) == len(co.Canary)
		for s, b := range co.Baseline {
			if co.Canary[s] != b {
				same = false
			}
		}
		if sc.AA != same {
			t.Errorf("%s: healthy=%v but cohorts alike=%v", sc.Name, sc.AA, same)
		}
	}
}

func TestReportOutputs(t *testing.T) {
	res, err := Run(context.Background(), Options{
		Kinds:   testKinds(),
		Targets: []Target{Runbook()}, Scenarios: scenarios(t, "aa", "errors-x10", "latency+60%"),
		RunsAA: 6, RunsAB: 6, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := Summarize(res)
	var table, js, svg bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| runbook-rule | aa (A/A) | 6 | 0.0 (0.0–39.0) |", "| runbook-rule | errors-x10 | 6 | 100.0 (61.0–100.0) |", "18 canaries"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != 3 || back.Rows[1].Statuses[analysis.StatusFail] != 6 {
		t.Errorf("json: %v %+v", err, back.Rows)
	}
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(svg.Bytes()))
	for {
		if _, err := d.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("svg is not well-formed XML: %v", err)
			}
			break
		}
	}
	if s := svg.String(); !strings.Contains(s, "runbook-rule") {
		t.Error("svg has no legend")
	}
	if fmtDur(90*time.Second) != "1m30s" || fmtDur(2*time.Minute) != "2m" || fmtDur(time.Hour) != "1h" {
		t.Errorf("fmtDur: %s %s %s", fmtDur(90*time.Second), fmtDur(2*time.Minute), fmtDur(time.Hour))
	}
}

// TestSummarize: rates, quantiles and the pooled healthy row from known outcomes.
func TestSummarize(t *testing.T) {
	sc := []Scenario{{Name: "aa", AA: true}, {Name: "aa-x", AA: true}, {Name: "errors-x10", Family: "errors", Size: 10}}
	res := &Result{Targets: []Target{{Name: "t"}}, Scenarios: sc}
	add := func(s string, st analysis.Status, detect time.Duration, verdict time.Duration) {
		res.Outcomes = append(res.Outcomes, Outcome{Target: "t", Scenario: s, Status: st, Detected: detect > 0, Detect: detect, Verdict: verdict})
	}
	for i := range 9 {
		add("aa", analysis.StatusPass, 0, 30*time.Minute)
		add("aa-x", analysis.StatusPass, 0, 30*time.Minute)
		add("errors-x10", analysis.StatusFail, time.Duration(i+1)*time.Minute, time.Duration(i+3)*time.Minute)
	}
	add("aa", analysis.StatusFail, 2*time.Minute, 4*time.Minute)
	add("aa-x", analysis.StatusMarginal, 0, 30*time.Minute)
	rep := Summarize(res)
	if len(rep.Rows) != 4 {
		t.Fatalf("rows %+v", rep.Rows)
	}
	aa, x10, pooled := rep.Rows[0], rep.Rows[2], rep.Rows[3]
	if aa.Fail.K != 1 || aa.Runs != 10 || aa.DetectMedian != 2*time.Minute {
		t.Errorf("aa: %+v", aa)
	}
	if x10.Fail.P != 1 || x10.DetectMedian != 5*time.Minute || x10.DetectP90 != 9*time.Minute || x10.VerdictMedian != 7*time.Minute {
		t.Errorf("errors-x10: median %s p90 %s verdict %s", x10.DetectMedian, x10.DetectP90, x10.VerdictMedian)
	}
	if !pooled.Pooled || pooled.Runs != 20 || pooled.Fail.K != 1 || pooled.Marginal.K != 1 {
		t.Errorf("pooled: %+v", pooled)
	}
}
