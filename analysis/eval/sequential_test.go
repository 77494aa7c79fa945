package eval

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// TestSequentialPreset: the shipped golden-signals preset (counts and histogram judges)
// is evaluated on the synthetic provider's per-step counts and buckets, not left out:
// its queries become signal=errors, signal=requests and signal=latency_bucket with the
// judges untouched, healthy canaries pass, and errors ×10 and latency +25% are caught.
func TestSequentialPreset(t *testing.T) {
	ts, err := LoadFiles([]string{"../../configs/golden-signals.yml"}, testKinds())
	if err != nil || len(ts) != 1 {
		t.Fatalf("targets %+v, %v", ts, err)
	}
	gs := ts[0]
	a, err := config.ParseAnalysis(gs.Name, gs.Source)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ query, requests string }{
		"error-rate": {"signal=errors cohort={{ .Cohort.track }} app={{ .Vars.app }}", "signal=requests cohort={{ .Cohort.track }} app={{ .Vars.app }}"},
		"latency":    {"signal=latency_bucket cohort={{ .Cohort.track }} app={{ .Vars.app }}", ""},
	}
	if len(a.Metrics) != len(want) {
		t.Fatalf("%d metrics, want %d", len(a.Metrics), len(want))
	}
	for _, m := range a.Metrics {
		w := want[m.Name]
		if m.Query != w.query || m.RequestsQuery != w.requests {
			t.Errorf("metric %s: query %q, requests_query %q; want %q, %q", m.Name, m.Query, m.RequestsQuery, w.query, w.requests)
		}
	}
	if gs.Signals["error-rate"] != "errors" || gs.Signals["latency"] != "latency_bucket" {
		t.Errorf("signals %v", gs.Signals)
	}
	res, err := Run(context.Background(), Options{
		Kinds: testKinds(), Targets: []Target{gs}, Scenarios: scenarios(t, "aa", "errors-x10", "latency+25%", "errors-x5-step"),
		RunsAA: 100, RunsAB: 20, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range Summarize(res).Rows {
		t.Logf("%s: %d of %d failed, detect median %s", row.Scenario, row.Fail.K, row.Runs, row.DetectMedian)
		switch {
		case row.Scenario == "aa" && row.Fail.K > 3: // alpha 1% per metric: 2 expected at most
			t.Errorf("A/A: %d of %d failed", row.Fail.K, row.Runs)
		case row.Scenario != "aa" && row.Scenario != "all healthy scenarios" && row.Fail.K != row.Runs:
			t.Errorf("%s: %d of %d failed, want all", row.Scenario, row.Fail.K, row.Runs)
		}
	}
	for _, o := range res.Outcomes {
		if o.Scenario == "errors-x10" && (!o.Detected || o.Detect > 2*gs.Interval) {
			t.Errorf("error rate ×10 run %d: detected %v after %s, want within two intervals", o.Run, o.Detected, o.Detect)
		}
		if o.FailedBeforeOnset {
			t.Errorf("%s run %d failed before its onset", o.Scenario, o.Run)
		}
	}
}

// TestCacheAnchorsAfter: the scheduler queries only the steps since the last interval;
// through the cache each such query reads the points a query from the end of the warmup
// does, so a regression's after counts from there (a direct query would start it after
// each query's own start).
func TestCacheAnchorsAfter(t *testing.T) {
	r := synthetic.DefaultRegression()
	r.Ratio, r.After = 10, model.Duration(5*time.Minute)
	p, err := synthetic.New(synthetic.Config{Seed: 3, Regressions: map[string]map[string]synthetic.Regression{"c": {"error_rate": r}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	anchor := simStart.Add(2 * time.Minute)
	const step = 15 * time.Second
	c := newPrefixCache(p, anchor, 28*time.Minute)
	for _, text := range []string{"signal=errors cohort=c", "signal=latency_bucket cohort=c streams=2"} {
		whole, err := p.Query(t.Context(), metrics.Query{Text: text, Start: anchor, End: anchor.Add(28 * time.Minute), Step: step})
		if err != nil {
			t.Fatal(err)
		}
		for from := time.Duration(0); from < 28*time.Minute; from += time.Minute {
			q := metrics.Query{Text: text, Start: anchor.Add(from + step), End: anchor.Add(from + time.Minute), Step: step}
			got, err := c.Query(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			want := part(whole, q.Start.UnixMilli(), q.End.UnixMilli())
			if !sameSeries(got, want) || got.Len() != 4*len(whole.Streams) {
				t.Fatalf("%q from +%s: %d points, not the whole query's %d", text, from+step, got.Len(), want.Len())
			}
		}
	}
}
