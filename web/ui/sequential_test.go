package ui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
)

// TestConfidenceSequenceChart: a counts metric's report shows its confidence sequence
// narrowing over the intervals, the tolerance, and where it crossed it and failed.
func TestConfidenceSequenceChart(t *testing.T) {
	a, err := config.ParseAnalysis("seq", []byte(`
provider: prom
lifetime: 5m
warmup: 1m
metrics:
  - name: errors
    query: 'e{track="{{ .Cohort.track }}"}'
    requests_query: 'r{track="{{ .Cohort.track }}"}'
    judge: {type: counts, allowed_increase: 1.5, critical: true, unit: ratio}
  - name: latency
    query: 'm{track="{{ .Cohort.track }}"}'
    judge: {type: mannwhitney}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := &analysis.Canary{ID: "c1", Name: "web", Analysis: "seq", Start: fixtureStart, Lifetime: 5 * time.Minute,
		Interval: time.Minute, Warmup: time.Minute, Intervals: 5, NextIndex: 5, Status: analysis.StatusFail}
	d := &analysis.Detail{Canary: c}
	// Intervals 2..4: the sequence narrows from [0.5, 8] to [2, 4]; interval 3 lies
	// wholly above ×1.5 and interval 4 fails.
	for k, q := range []struct {
		est, low, high float64
		class          judge.Classification
	}{{2, 0.5, 8, judge.ClassPass}, {3, 1.6, 5, judge.ClassPass}, {3, 2, 4, judge.ClassHigh}} {
		idx := k + 2
		d.Results = append(d.Results, analysis.IntervalResult{CanaryID: c.ID, Index: idx, Start: c.Start.Add(c.Warmup), End: c.IntervalEnd(idx),
			Metrics: []judge.MetricResult{{Name: "errors", Kind: judge.KindCounts, Classification: q.class, Critical: true,
				Sequential: judge.SequentialResult{Steps: 4 * k, Estimate: q.est, Low: q.low, High: q.high, Confidence: 0.99, EValue: 10 * float64(k+1), Threshold: 100}},
				{Name: "latency", Kind: judge.KindMannWhitney, Classification: judge.ClassPass}}})
	}
	d.Results[2].Metrics[0].Sequential.EValue = 250
	p := buildReport(d, a, analysis.RenderQueries(a, d.Canary), fixtureStart.Add(10*time.Minute))
	var errs, lat *metricView
	for i := range p.Metrics {
		switch p.Metrics[i].Name {
		case "errors":
			errs = &p.Metrics[i]
		case "latency":
			lat = &p.Metrics[i]
		}
	}
	if errs == nil || lat == nil {
		t.Fatalf("metrics: %+v", p.Metrics)
	}
	if lat.HasCS {
		t.Errorf("mannwhitney metric has a confidence sequence chart")
	}
	if !errs.HasCS || len(errs.CS.Series) != 2 || errs.CS.Series[0].Points != 3 || len(errs.CS.Rules) != 1 || len(errs.CS.Dots) != 2 {
		t.Fatalf("errors chart: has %v, series %+v, rules %+v, dots %+v", errs.HasCS, errs.CS.Series, errs.CS.Rules, errs.CS.Dots)
	}
	if got := errs.CS.Rules[0].Label; got != "tolerated ×1.5" {
		t.Errorf("tolerance rule %q", got)
	}
	for _, want := range []string{"It first lay wholly beyond the tolerance at interval 3.", "The metric failed at interval 4 (e-value 250 reached 100)."} {
		if !strings.Contains(errs.CSNote, want) {
			t.Errorf("note %q lacks %q", errs.CSNote, want)
		}
	}
	if errs.Judge != "counts · increase fails · tolerates ×1.5 · false alarms ≤ 1% over the canary · critical" {
		t.Errorf("judge summary %q", errs.Judge)
	}
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, "report", p); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{`<svg id="cs-0" class="chart confidence"`, `class="cs-area"`, `class="crossing"`, "tolerated ×1.5", "It first lay wholly beyond"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, `id="cs-1"`) {
		t.Error("page has a confidence sequence for the mannwhitney metric")
	}
}
