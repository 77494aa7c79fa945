package promsim

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/eval"
)

// OracleRow is one scenario's figures for one who: the oracle (at level Alpha, from the
// true onset) or a judged target.
type OracleRow struct {
	Scenario string `json:"scenario"`
	AA       bool   `json:"aa"`
	// Who is "oracle" or the target's name.
	Who  string `json:"who"`
	Runs int    `json:"runs"`
	// Caught is the share of runs detected within the lifetime (the oracle: rejected at
	// the last look; for a healthy scenario, a false alarm).
	Caught eval.Rate `json:"caught"`
	// FirstLook is the share detected at the first look after the onset (the oracle:
	// rejected there).
	FirstLook eval.Rate `json:"first_look"`
	// Median is the earliest time from the onset by which half of all runs (missed ones
	// included) are detected (the oracle: rejected at that look); 0 when never.
	Median time.Duration `json:"median,omitempty"`
	// AnyLook (oracle only) is the share of runs rejected at some look: each look is a
	// level-α test, so on healthy runs this exceeds α (it is no valid judge).
	AnyLook *eval.Rate `json:"any_look,omitempty"`
}

// OracleReport is the oracle next to each judged target, per scenario.
type OracleReport struct {
	Alpha float64     `json:"alpha"`
	Rows  []OracleRow `json:"rows"`
	// What WriteMisses breaks down: the scenarios, the oracle's runs and each target's
	// outcomes by run.
	scenarios []Scenario
	oracle    map[runKey]OracleRun
	outcomes  map[string]map[runKey]eval.Outcome
	targets   []string
}

type runKey struct {
	scenario string
	run      int
}

// caught is whether a judge detected the regression: it failed, at an interval ending
// after the onset (eval's rule).
func caught(o eval.Outcome) bool { return o.Status == analysis.StatusFail && o.Detected }

func rejected(p []float64, i int, alpha float64) bool {
	if len(p) == 0 {
		return false
	}
	return p[min(i, len(p)-1)] <= alpha
}

// SummarizeOracle joins the oracle's runs with res's outcomes (the same runs: scenario
// and index), at level alpha; interval is the looks' spacing.
func SummarizeOracle(scenarios []Scenario, runs []OracleRun, res *eval.Result, alpha float64, interval time.Duration) *OracleReport {
	rep := &OracleReport{Alpha: alpha, scenarios: scenarios, oracle: map[runKey]OracleRun{}, outcomes: map[string]map[runKey]eval.Outcome{}}
	by := map[string][]OracleRun{}
	for _, r := range runs {
		by[r.Scenario] = append(by[r.Scenario], r)
		rep.oracle[runKey{r.Scenario, r.Run}] = r
	}
	outs := map[string]map[string][]eval.Outcome{}
	if res != nil {
		for _, t := range res.Targets {
			rep.targets = append(rep.targets, t.Name)
			outs[t.Name] = map[string][]eval.Outcome{}
			rep.outcomes[t.Name] = map[runKey]eval.Outcome{}
		}
		for _, o := range res.Outcomes {
			outs[o.Target][o.Scenario] = append(outs[o.Target][o.Scenario], o)
			rep.outcomes[o.Target][runKey{o.Scenario, o.Run}] = o
		}
	}
	for _, sc := range scenarios {
		rs := by[sc.Name]
		if len(rs) == 0 {
			continue
		}
		looks := 0
		for _, r := range rs {
			looks = max(looks, len(r.At))
		}
		tests := []string{sc.oracleTest()}
		if sc.AA {
			tests = []string{"errors", "latency"}
		}
		for _, test := range tests {
			rep.Rows = append(rep.Rows, oracleRow(sc, test, rs, looks, alpha, interval))
		}
		for _, test := range tests {
			rep.Rows = append(rep.Rows, sequentialRow(sc, test, rs, looks, alpha, interval))
		}
		if !sc.AA && sc.oracleTest() == "latency" {
			row := oracleRow(sc, "latency-one", rs, looks, alpha, interval)
			row.Who = "oracle, one boundary"
			rep.Rows = append(rep.Rows, row)
		}
		for _, t := range rep.targets {
			os := outs[t][sc.Name]
			if len(os) == 0 {
				continue
			}
			row := OracleRow{Scenario: sc.Name, AA: sc.AA, Who: t, Runs: len(os)}
			var fin, first int
			var detect []time.Duration
			for _, o := range os {
				if sc.AA {
					if o.Status == analysis.StatusFail {
						fin++
					}
					continue
				}
				if caught(o) {
					fin++
					detect = append(detect, o.Detect)
					if o.Detect <= interval {
						first++
					}
				}
			}
			slices.Sort(detect)
			if need := (len(os) + 1) / 2; need <= len(detect) {
				row.Median = detect[need-1]
			}
			row.Caught, row.FirstLook = eval.Wilson(fin, len(os)), eval.Wilson(first, len(os))
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep
}

// oracleRow summarises the oracle's test (errors or latency) on a scenario's runs.
func oracleRow(sc Scenario, test string, rs []OracleRun, looks int, alpha float64, interval time.Duration) OracleRow {
	pOf := testP(test)
	who := "oracle"
	if sc.AA {
		who = "oracle, " + test + " test"
	}
	row := OracleRow{Scenario: sc.Name, AA: sc.AA, Who: who, Runs: len(rs)}
	var fin, first, any int
	for _, r := range rs {
		p := pOf(r)
		if rejected(p, len(p)-1, alpha) {
			fin++
		}
		if rejected(p, 0, alpha) {
			first++
		}
		if slices.ContainsFunc(p, func(v float64) bool { return v <= alpha }) {
			any++
		}
	}
	for i := range looks {
		if sc.AA {
			break // no onset, no time to detect
		}
		k := 0
		for _, r := range rs {
			if rejected(pOf(r), i, alpha) {
				k++
			}
		}
		if 2*k >= len(rs) {
			row.Median = time.Duration(i+1) * interval
			break
		}
	}
	a := eval.Wilson(any, len(rs))
	row.Caught, row.FirstLook, row.AnyLook = eval.Wilson(fin, len(rs)), eval.Wilson(first, len(rs)), &a
	return row
}

func testP(test string) func(OracleRun) []float64 {
	return func(r OracleRun) []float64 {
		switch test {
		case "errors":
			return r.ErrorsP
		case "latency-one":
			return r.LatencyOneP
		}
		return r.LatencyP
	}
}

// sequentialRow is the oracle made valid over its looks by Bonferroni: a run fails at
// its first look whose p-value is at most α over its number of looks. It still knows
// the onset and the effect, so no judge that knows neither needs to beat it, but it is a
// valid sequential test: what it catches, a judge could.
func sequentialRow(sc Scenario, test string, rs []OracleRun, looks int, alpha float64, interval time.Duration) OracleRow {
	pOf := testP(test)
	who := "oracle, α/looks"
	if sc.AA {
		who = "oracle, α/looks, " + test + " test"
	}
	row := OracleRow{Scenario: sc.Name, AA: sc.AA, Who: who, Runs: len(rs)}
	firstAt := make([]int, len(rs)) // first look rejected; -1 never
	var fin, first int
	for j, r := range rs {
		p := pOf(r)
		firstAt[j] = slices.IndexFunc(p, func(v float64) bool { return v <= alpha/float64(len(p)) })
		if firstAt[j] >= 0 {
			fin++
		}
		if firstAt[j] == 0 {
			first++
		}
	}
	for i := range looks {
		if sc.AA {
			break
		}
		k := 0
		for _, f := range firstAt {
			if f >= 0 && f <= i {
				k++
			}
		}
		if 2*k >= len(rs) {
			row.Median = time.Duration(i+1) * interval
			break
		}
	}
	row.Caught, row.FirstLook = eval.Wilson(fin, len(rs)), eval.Wilson(first, len(rs))
	return row
}

// WriteJSON writes the report as indented JSON.
func (r *OracleReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("promsim: write oracle json: %w", err)
	}
	return nil
}

// WriteTable writes the report as a Markdown table.
func (r *OracleReport) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | who | runs | caught %% (95%% CI) | at the first look %% | median detect (all runs) | oracle at any look %% |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		scen, med, anyLook, firstLook := row.Scenario, "—", "", fmt.Sprintf("%.1f", 100*row.FirstLook.P)
		if row.AA {
			scen += " (A/A)"
			if row.AnyLook == nil {
				firstLook = ""
			}
		} else if row.Median > 0 {
			med = fmtMinutes(row.Median)
		}
		if row.AA {
			med = ""
		}
		if row.AnyLook != nil {
			anyLook = fmt.Sprintf("%.1f", 100*row.AnyLook.P)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f (%.1f–%.1f) | %s | %s | %s |\n", scen, row.Who, row.Runs,
			100*row.Caught.P, 100*row.Caught.Low, 100*row.Caught.High, firstLook, med, anyLook)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("promsim: write oracle table: %w", err)
	}
	return nil
}

func fmtMinutes(d time.Duration) string {
	s := d.Round(time.Second).String()
	return strings.TrimSuffix(s, "0s")
}

// rateBins are the canary's own request rate (req/s at a traffic factor of 1) the misses
// are broken down by; shareBins its share of the traffic.
var (
	rateBins  = []float64{0.5, 1, 2, 5, 20, 100}
	shareBins = []float64{0.15, 0.3}
)

func binOf(v float64, edges []float64) int {
	for i, e := range edges {
		if v < e {
			return i
		}
	}
	return len(edges)
}

func binName(i int, edges []float64, pct bool) string {
	f := func(v float64) string {
		if pct {
			return fmt.Sprintf("%g%%", 100*v)
		}
		return fmt.Sprintf("%g", v)
	}
	lo, hi := minShare, maxShare
	if !pct {
		lo, hi = 0, 0
	}
	switch {
	case i == 0 && lo == 0:
		return "< " + f(edges[0])
	case i == 0:
		return f(lo) + "–" + f(edges[0])
	case i == len(edges) && hi == 0:
		return "≥ " + f(edges[i-1])
	case i == len(edges):
		return f(edges[i-1]) + "–" + f(hi)
	}
	return f(edges[i-1]) + "–" + f(edges[i])
}

// WriteMisses writes, for target and each regression scenario, the runs by the canary's
// request rate (rows) and share (columns), each cell "missed by target / missed by the
// oracle (not rejected at the last look) of runs", and how many both missed per row;
// rates without runs are left out. With target "" the cells are the oracle's alone
// ("missed by the oracle of runs").
func (r *OracleReport) WriteMisses(w io.Writer, target string) error {
	var b strings.Builder
	b.WriteString("| scenario | canary req/s |")
	for si := 0; si <= len(shareBins); si++ {
		fmt.Fprintf(&b, " share %s |", binName(si, shareBins, true))
	}
	last := "both missed"
	if target == "" {
		last = "oracle missed" // every run counts as missed by the absent judge
	}
	fmt.Fprintf(&b, " all | %s |\n| --- | --- |", last)
	for si := 0; si <= len(shareBins)+1; si++ {
		b.WriteString(" ---: |")
	}
	b.WriteString(" ---: |\n")
	type cell struct{ runs, judge, oracle, both int }
	text := func(c cell) string {
		if c.runs == 0 {
			return ""
		}
		if target == "" {
			return fmt.Sprintf("%d of %d", c.oracle, c.runs)
		}
		return fmt.Sprintf("%d/%d of %d", c.judge, c.oracle, c.runs)
	}
	for _, sc := range r.scenarios {
		if sc.AA {
			continue
		}
		cells := map[[2]int]*cell{}
		rows := map[int]*cell{}
		var total cell
		for key, o := range r.oracle {
			if key.scenario != sc.Name {
				continue
			}
			out, ok := r.outcomes[target][key]
			if !ok && target != "" {
				continue
			}
			ri, si := binOf(o.Service.Rate*o.Service.Share, rateBins), binOf(o.Service.Share, shareBins)
			if cells[[2]int{ri, si}] == nil {
				cells[[2]int{ri, si}] = &cell{}
			}
			if rows[ri] == nil {
				rows[ri] = &cell{}
			}
			p := o.P(sc)
			jm, om := !caught(out), !rejected(p, len(p)-1, r.Alpha)
			for _, c := range []*cell{cells[[2]int{ri, si}], rows[ri], &total} {
				c.runs++
				if jm {
					c.judge++
				}
				if om {
					c.oracle++
				}
				if jm && om {
					c.both++
				}
			}
		}
		if total.runs == 0 {
			continue
		}
		for ri := 0; ri <= len(rateBins); ri++ {
			if rows[ri] == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s |", sc.Name, binName(ri, rateBins, false))
			for si := 0; si <= len(shareBins); si++ {
				c := cells[[2]int{ri, si}]
				if c == nil {
					c = &cell{}
				}
				fmt.Fprintf(&b, " %s |", text(*c))
			}
			fmt.Fprintf(&b, " %s | %d |\n", text(*rows[ri]), rows[ri].both)
		}
		fmt.Fprintf(&b, "| %s | all | | | | %s | %d |\n", sc.Name, text(total), total.both)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("promsim: write misses: %w", err)
	}
	return nil
}
