package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/canaryd/canaryd/analysis"
)

// Rate is a proportion with its 95% Wilson score interval.
type Rate struct {
	K    int     `json:"k"`
	N    int     `json:"n"`
	P    float64 `json:"p"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Wilson is k successes out of n with the 95% Wilson score interval, which unlike the
// normal interval stays inside [0, 1] and is honest at 0 of n.
func Wilson(k, n int) Rate {
	r := Rate{K: k, N: n}
	if n == 0 {
		return r
	}
	z := distuv.UnitNormal.Quantile(0.975)
	p, nf := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / den
	half := z / den * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))
	r.P, r.Low, r.High = p, math.Max(0, center-half), math.Min(1, center+half)
	return r
}

// Row is one (analysis, scenario) of the report.
type Row struct {
	Target   string `json:"target"`
	Scenario string `json:"scenario"`
	AA       bool   `json:"aa"`
	// Pooled marks the row that pools every healthy scenario of the target.
	Pooled bool    `json:"pooled,omitempty"`
	Family string  `json:"family,omitempty"`
	Size   float64 `json:"size,omitempty"`
	Runs   int     `json:"runs"`
	// Statuses counts the final statuses.
	Statuses map[analysis.Status]int `json:"statuses"`
	// Fail is the share of runs that ended failed: the false fail rate of a healthy
	// scenario, the detection rate of a regression. Marginal likewise.
	Fail     Rate `json:"fail"`
	Marginal Rate `json:"marginal"`
	// Detect* are over the failed runs whose first failing interval ended after the onset:
	// onset to the end of that interval.
	DetectMedian time.Duration `json:"detect_median,omitempty"`
	DetectP90    time.Duration `json:"detect_p90,omitempty"`
	// FailedBeforeOnset counts runs with a failing interval before the regression began.
	FailedBeforeOnset int `json:"failed_before_onset,omitempty"`
	// Verdict* are from the canary's start to its final status, over all runs.
	VerdictMedian time.Duration `json:"verdict_median"`
	VerdictP90    time.Duration `json:"verdict_p90"`
}

// Report is a Result summarised.
type Report struct {
	Seed        int64         `json:"seed"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Canaries    int           `json:"canaries"`
	CanaryHours float64       `json:"canary_hours"`
	Intervals   int           `json:"intervals_judged"`
	Targets     []Target      `json:"targets"`
	Scenarios   []Scenario    `json:"scenarios"`
	Rows        []Row         `json:"rows"`
}

// Summarize aggregates the outcomes per target and scenario, in the options' order.
func Summarize(res *Result) *Report {
	rep := &Report{Seed: res.Seed, Elapsed: res.Elapsed, Canaries: len(res.Outcomes), CanaryHours: res.CanaryHours,
		Intervals: res.Intervals, Targets: res.Targets, Scenarios: res.Scenarios}
	type key struct{ t, s string }
	groups := map[key][]Outcome{}
	for _, o := range res.Outcomes {
		k := key{o.Target, o.Scenario}
		groups[k] = append(groups[k], o)
	}
	for _, t := range res.Targets {
		var healthy []Outcome
		aaScenarios := 0
		for _, sc := range res.Scenarios {
			os := groups[key{t.Name, sc.Name}]
			if len(os) == 0 {
				continue
			}
			row := summarize(os)
			row.Target, row.Scenario, row.AA, row.Family, row.Size = t.Name, sc.Name, sc.AA, sc.Family, sc.Size
			rep.Rows = append(rep.Rows, row)
			if sc.AA {
				healthy = append(healthy, os...)
				aaScenarios++
			}
		}
		if aaScenarios > 1 {
			row := summarize(healthy)
			row.Target, row.Scenario, row.AA, row.Pooled = t.Name, "all healthy scenarios", true, true
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep
}

func summarize(os []Outcome) Row {
	row := Row{Runs: len(os), Statuses: map[analysis.Status]int{}}
	var detect, verdict []float64
	for _, o := range os {
		row.Statuses[o.Status]++
		if o.FailedBeforeOnset {
			row.FailedBeforeOnset++
		}
		if o.Status == analysis.StatusFail && o.Detected {
			detect = append(detect, float64(o.Detect))
		}
		verdict = append(verdict, float64(o.Verdict))
	}
	row.Fail = Wilson(row.Statuses[analysis.StatusFail], len(os))
	row.Marginal = Wilson(row.Statuses[analysis.StatusMarginal], len(os))
	row.DetectMedian, row.DetectP90 = quantile(detect, 0.5), quantile(detect, 0.9)
	row.VerdictMedian, row.VerdictP90 = quantile(verdict, 0.5), quantile(verdict, 0.9)
	return row
}

func quantile(v []float64, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return time.Duration(stat.Quantile(p, stat.Empirical, v, nil))
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("eval: write json: %w", err)
	}
	return nil
}

// WriteTable writes the report as a Markdown table (readable in a terminal, pasteable into
// benchmarks/RESULTS.md), then the run's size and speed.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| analysis | scenario | runs | fail % (95% CI) | marginal % (95% CI) | detect median | detect p90 | verdict median |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		detMed, detP90 := "—", "—"
		if row.Fail.K > 0 && row.DetectMedian > 0 {
			detMed, detP90 = fmtDur(row.DetectMedian), fmtDur(row.DetectP90)
		}
		scen := row.Scenario
		if row.AA {
			scen += " (A/A)"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", row.Target, scen, row.Runs,
			fmtRate(row.Fail), fmtRate(row.Marginal), detMed, detP90, fmtDur(row.VerdictMedian))
	}
	fmt.Fprintf(&b, "\n%d canaries, %.0f simulated canary-hours, %d intervals judged in %.1f s wall time (%.0f canary-hours per second)\n",
		r.Canaries, r.CanaryHours, r.Intervals, r.Elapsed.Seconds(), r.CanaryHours/math.Max(r.Elapsed.Seconds(), 1e-9))
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("eval: write table: %w", err)
	}
	return nil
}

func fmtRate(r Rate) string {
	return fmt.Sprintf("%.1f (%.1f–%.1f)", 100*r.P, 100*r.Low, 100*r.High)
}

// fmtDur prints whole seconds compactly: 2m, 1m30s, 45s.
func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
