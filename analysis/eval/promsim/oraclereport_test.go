package promsim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/eval"
)

// TestOracleReport: the oracle's and a judge's rows and the misses by traffic, on runs
// whose p-values and outcomes are set by hand.
func TestOracleReport(t *testing.T) {
	sc := []Scenario{
		{Name: "aa", AA: true},
		{Name: "errors-x10", Regression: Regression{ErrorFactor: 10}},
	}
	svc := func(rate, share float64) Service { return Service{Rate: rate, Share: share} }
	at := []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}
	runs := []OracleRun{
		{Scenario: "aa", Run: 0, At: at, ErrorsP: []float64{0.5, 0.005, 0.5}, LatencyP: []float64{0.5, 0.5, 0.009}},
		{Scenario: "aa", Run: 1, At: at, ErrorsP: []float64{0.5, 0.5, 0.5}, LatencyP: []float64{0.5, 0.5, 0.5}},
		// Rejected at the first look, at the second, at the last, never.
		{Scenario: "errors-x10", Run: 0, Service: svc(1, 0.1), At: at, ErrorsP: []float64{0.001, 0.0001, 0.0001}, LatencyP: []float64{1, 1, 1}},
		{Scenario: "errors-x10", Run: 1, Service: svc(1.5, 0.4), At: at, ErrorsP: []float64{0.2, 0.01, 0.001}, LatencyP: []float64{1, 1, 1}},
		{Scenario: "errors-x10", Run: 2, Service: svc(300, 0.2), At: at, ErrorsP: []float64{0.2, 0.3, 0.004}, LatencyP: []float64{1, 1, 1}},
		{Scenario: "errors-x10", Run: 3, Service: svc(1, 0.2), At: at, ErrorsP: []float64{0.9, 0.9, 0.2}, LatencyP: []float64{0, 0, 0}},
	}
	fail := func(s string, run int, detect time.Duration) eval.Outcome {
		return eval.Outcome{Target: "j", Scenario: s, Run: run, Status: analysis.StatusFail, Detected: detect > 0, Detect: detect}
	}
	pass := func(s string, run int) eval.Outcome {
		return eval.Outcome{Target: "j", Scenario: s, Run: run, Status: analysis.StatusPass}
	}
	res := &eval.Result{Targets: []eval.Target{{Name: "j"}}, Outcomes: []eval.Outcome{
		fail("aa", 0, 0), pass("aa", 1),
		fail("errors-x10", 0, time.Minute), pass("errors-x10", 1), fail("errors-x10", 2, 3*time.Minute), pass("errors-x10", 3),
	}}
	rep := SummarizeOracle(sc, runs, res, 0.01, time.Minute)
	type row struct {
		who                string
		caught, first, any int
		median             time.Duration
	}
	want := []row{
		{"oracle, errors test", 0, 0, 1, 0},
		{"oracle, latency test", 1, 0, 1, 0},
		// At α/3 per look neither 0.005 nor 0.009 is rejected.
		{"oracle, α/looks, errors test", 0, 0, -1, 0},
		{"oracle, α/looks, latency test", 0, 0, -1, 0},
		{"j", 1, 0, -1, 0},
		// 3 of 4 at the last look, 1 at the first, half (2) by the second.
		{"oracle", 3, 1, 3, 2 * time.Minute},
		// At 0.01/3: run 0 at the first look, run 1 at the third (0.001), run 2 never
		// (0.004): half by 3m.
		{"oracle, α/looks", 2, 1, -1, 3 * time.Minute},
		// Detected: run 0 at 1m, run 2 at 3m: half of 4 by 3m.
		{"j", 2, 1, -1, 3 * time.Minute},
	}
	if len(rep.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), len(want), rep.Rows)
	}
	for i, w := range want {
		g := rep.Rows[i]
		anyK := -1
		if g.AnyLook != nil {
			anyK = g.AnyLook.K
		}
		if g.Who != w.who || g.Caught.K != w.caught || g.FirstLook.K != w.first || anyK != w.any || g.Median != w.median {
			t.Errorf("row %d: %s caught %d first %d any %d median %v; want %+v", i, g.Who, g.Caught.K, g.FirstLook.K, anyK, g.Median, w)
		}
	}
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"| aa (A/A) | oracle, latency test | 2 | 50.0 (9.5–90.5) | 0.0 |  | 50.0 |",
		"| errors-x10 | oracle | 4 | 75.0 (30.1–95.4) | 25.0 | 2m | 75.0 |",
		"| errors-x10 | oracle, α/looks | 4 | 50.0 (15.0–85.0) | 25.0 | 3m |  |",
		"| errors-x10 | j | 4 | 50.0 (15.0–85.0) | 25.0 | 3m |  |",
	} {
		if !strings.Contains(tab.String(), line) {
			t.Errorf("table lacks\n%s\n---\n%s", line, tab.String())
		}
	}
	var misses bytes.Buffer
	if err := rep.WriteMisses(&misses, "j"); err != nil {
		t.Fatal(err)
	}
	// Canary req/s: run 0 0.1, run 3 0.2 (< 0.5; shares 10%, 20%), run 1 0.6 (40%), run 2 60 (20%).
	for _, line := range []string{
		"| errors-x10 | < 0.5 | 0/0 of 1 | 1/1 of 1 |  | 1/1 of 2 | 1 |",
		"| errors-x10 | 0.5–1 |  |  | 1/0 of 1 | 1/0 of 1 | 0 |",
		"| errors-x10 | 20–100 |  | 0/0 of 1 |  | 0/0 of 1 | 0 |",
		"| errors-x10 | all | | | | 2/1 of 4 | 1 |",
	} {
		if !strings.Contains(misses.String(), line) {
			t.Errorf("misses lack\n%s\n---\n%s", line, misses.String())
		}
	}
	var alone bytes.Buffer
	if err := rep.WriteMisses(&alone, ""); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"| scenario | canary req/s | share 5%–15% | share 15%–30% | share 30%–50% | all | oracle missed |",
		"| errors-x10 | < 0.5 | 0 of 1 | 1 of 1 |  | 1 of 2 | 1 |",
		"| errors-x10 | all | | | | 1 of 4 | 1 |",
	} {
		if !strings.Contains(alone.String(), line) {
			t.Errorf("the oracle's misses lack\n%s\n---\n%s", line, alone.String())
		}
	}
	if strings.Contains(misses.String(), "| aa |") {
		t.Errorf("misses list a healthy scenario:\n%s", misses.String())
	}
}

// TestOracleReportOneBoundary: a latency scenario also gets the one-boundary oracle's
// row, from its own p-values.
func TestOracleReportOneBoundary(t *testing.T) {
	sc := []Scenario{{Name: "latency+10%", Regression: Regression{LatencyFactor: 1.1}}}
	at := []time.Duration{time.Minute, 2 * time.Minute}
	runs := []OracleRun{
		{Scenario: "latency+10%", Run: 0, At: at, ErrorsP: []float64{1, 1}, LatencyP: []float64{0.001, 0.001}, LatencyOneP: []float64{0.5, 0.002}},
		{Scenario: "latency+10%", Run: 1, At: at, ErrorsP: []float64{1, 1}, LatencyP: []float64{0.5, 0.001}, LatencyOneP: []float64{0.5, 0.5}},
	}
	rep := SummarizeOracle(sc, runs, nil, 0.01, time.Minute)
	var got []string
	for _, r := range rep.Rows {
		got = append(got, r.Who)
	}
	if want := []string{"oracle", "oracle, α/looks", "oracle, one boundary"}; strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("rows %q, want %q", got, want)
	}
	if o, one := rep.Rows[0], rep.Rows[2]; o.Caught.K != 2 || o.Median != time.Minute || one.Caught.K != 1 || one.FirstLook.K != 0 || one.Median != 2*time.Minute {
		t.Errorf("all buckets caught %d median %v; one boundary caught %d first %d median %v; want 2 1m, 1 0 2m",
			o.Caught.K, o.Median, one.Caught.K, one.FirstLook.K, one.Median)
	}
}
