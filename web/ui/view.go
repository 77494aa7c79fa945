package ui

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
)

// pageBase is what every page's head and header need.
type pageBase struct {
	Title string
	// Root is the list page, relative to this page, so the pages work wherever the
	// handler is mounted with its paths stripped.
	Root string
	// Refresh is the meta refresh delay in seconds; 0 when the page does not refresh.
	Refresh   int
	Generated string
}

type kv struct{ K, V string }

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, kv{k, m[k]})
	}
	return out
}

// cohortVar is one cohort variable, side by side for both cohorts.
type cohortVar struct{ K, Baseline, Canary string }

func cohortVars(b, c map[string]string) []cohortVar {
	keys := slices.Sorted(maps.Keys(b))
	for k := range c {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]cohortVar, len(keys))
	for i, k := range keys {
		out[i] = cohortVar{K: k, Baseline: b[k], Canary: c[k]}
	}
	return out
}

// preflightView is one actuator's preflight check on the report.
type preflightView struct {
	Actuator, Type, Target string
	Result, Class          string
	Detail, Output         string
	Seconds                string
}

type reportPage struct {
	pageBase
	ID, Name, Analysis  string
	Status, StatusClass string
	Reason              string
	Score, Verdict      string
	// ScoreNote says why there is no score (nothing could be scored); VerdictLabel what
	// the verdict is (so far, while running).
	ScoreNote, VerdictLabel string
	// NotJudgedYet replaces the metrics' empty charts before the first judgement.
	NotJudgedYet        string
	Judged, Done, Total int
	Running             bool
	NextAt              string
	Facts               []kv
	Cohorts             []cohortVar
	Vars                []kv
	ScoreChart          chart
	FailingIndex        int
	Failing             []failingMetric
	Metrics             []metricView
	Actions             []actionView
	// Warnings are the failed preflight checks the canary was registered despite;
	// Preflight every check run.
	Warnings  []string
	Preflight []preflightView
	Notes     []string
	APIHref   string
	// Override is the abort and promote forms, on a running canary when the pages may
	// end one.
	Override *overrideView
	// Recovery is the recovery watch of a failed or aborted canary.
	Recovery *recoveryView
	// Actuations are the actuator actions (rollback, escalation, …), when the pages can
	// read them.
	Actuations []actuationRow
}

type recoveryView struct {
	Outcome, OutcomeClass string
	Reason                string
	Times                 []kv
	Rollbacks             []kv
	Figures               []recoveryRow
}

type recoveryRow struct {
	Metric, Cohort     string
	State, CSS         string
	Reference, Current string
	Reason             string
}

type actuationRow struct {
	Trigger, Actuator, Type string
	State, CSS              string
	Attempts                int
	Done, Error             string
}

// actuationRows lays out a canary's actuator actions, in the order the store keeps them.
func actuationRows(acts []*guard.Actuation) []actuationRow {
	var out []actuationRow
	for _, a := range acts {
		row := actuationRow{Trigger: a.Trigger, Actuator: a.Actuator, Type: a.Type, State: string(a.State), Attempts: a.Attempts, Error: a.Error}
		switch a.State {
		case guard.StateSucceeded:
			row.CSS = "ok"
		case guard.StateFailed, guard.StateAbandoned:
			row.CSS = "bad"
		case guard.StatePending, guard.StateFiring, guard.StateAwaitingApproval:
			row.CSS = "run"
		default:
			row.CSS = "muted"
		}
		if a.DoneAt != nil {
			row.Done = formatTime(*a.DoneAt)
		}
		out = append(out, row)
	}
	return out
}

// recoveryClass is the badge class of a recovery outcome.
func recoveryClass(o analysis.RecoveryOutcome) string {
	switch o {
	case analysis.RecoveryRecovered:
		return "ok"
	case analysis.RecoveryNotRecovered:
		return "bad"
	case analysis.RecoveryUnknown:
		return "err"
	}
	return "run"
}

// buildRecovery lays out the watch: its outcome and reason, the loop's times from the
// canary's start, the fail actions, and the last check's figures.
func buildRecovery(c *analysis.Canary, a *config.Analysis) *recoveryView {
	r := c.Recovery
	if r == nil {
		return nil
	}
	v := &recoveryView{Outcome: string(r.Outcome), OutcomeClass: recoveryClass(r.Outcome), Reason: r.Reason}
	since := func(t time.Time) string {
		return formatTime(t) + " (" + formatDuration(t.Sub(c.Start)) + " after the start)"
	}
	if c.FirstFailAt != nil {
		v.Times = append(v.Times, kv{"detected", since(*c.FirstFailAt)})
	}
	if c.EndedAt != nil {
		v.Times = append(v.Times, kv{"decided", since(*c.EndedAt)})
	}
	if r.RolledBackAt != nil {
		v.Times = append(v.Times, kv{"rolled back", since(*r.RolledBackAt)})
	}
	switch {
	case r.Outcome == analysis.RecoveryRecovered && r.DecidedAt != nil:
		v.Times = append(v.Times, kv{"recovered", since(*r.DecidedAt)})
	case r.Outcome.Final() && r.DecidedAt != nil:
		v.Times = append(v.Times, kv{string(r.Outcome), since(*r.DecidedAt)})
	case r.Outcome == analysis.RecoveryWatching && r.Deadline != nil:
		v.Times = append(v.Times, kv{"next check", formatTime(r.NextAt)}, kv{"watch ends", formatTime(*r.Deadline)})
	case r.Outcome == analysis.RecoveryWaiting:
		v.Times = append(v.Times, kv{"watch", "waits for the fail actions to finish"})
	}
	v.Times = append(v.Times, kv{"window", formatDuration(r.Within) + " of " + strings.Join(r.Metrics, ", ")})
	for _, rb := range r.Rollbacks {
		txt := rb.State
		if rb.Notification {
			txt += " (notification)"
		}
		if rb.Error != "" {
			txt += ": " + rb.Error
		}
		v.Rollbacks = append(v.Rollbacks, kv{rb.Actuator, txt})
	}
	units := map[string]string{}
	if a != nil {
		for _, m := range a.Metrics {
			units[m.Name] = m.Spec.Unit
		}
	}
	for _, f := range r.Figures {
		row := recoveryRow{Metric: f.Metric, Cohort: f.Cohort, Reason: f.Reason, Reference: "—", Current: "—"}
		switch {
		case f.Error != "":
			row.State, row.CSS, row.Reason = "error", "err", f.Error
		case f.NoData:
			row.State, row.CSS = "nodata", "muted"
		case f.Within:
			row.State, row.CSS = "within", "ok"
		default:
			row.State, row.CSS = "outside", "bad"
		}
		if f.Error == "" {
			if f.NReference > 0 {
				row.Reference = formatValue(f.Reference, units[f.Metric])
			}
			if f.NCurrent > 0 {
				row.Current = formatValue(f.Current, units[f.Metric])
			}
		}
		v.Figures = append(v.Figures, row)
	}
	return v
}

type failingMetric struct {
	Anchor, Name   string
	Classification string
	CSS            string
	Critical       bool
	Reason         string
}

type metricView struct {
	Anchor                  string
	Name, Group, Kind, Unit string
	Judge                   string
	Critical                bool
	Classification, Reason  string
	CSS                     string
	TS, ECDF                chart
	ShiftNote               string
	// CS is a sequential metric's confidence sequence over the intervals (HasCS).
	CS                     chart
	HasCS                  bool
	CSNote                 string
	Rows                   []resultRow
	BaselinePts, CanaryPts int
	HasMW, HasWindow       bool
	LatestIndex            int
	// Older counts the intervals left out of Rows (maxMetricRows).
	Older int
	// Queries are the metric's queries as sent for each cohort.
	Queries []analysis.RenderedQuery
	// Day is the date of the time axis (its ticks are clock times); RatioBound labels a
	// ratio judge's bound, drawn as the baseline times the bound.
	Day, RatioBound string
}

// resultRow is one interval's result for one metric.
type resultRow struct {
	Index          int
	Window         string
	Classification string
	CSS            string
	Reason         string
	P, Shift, CI   string
	Relative       string
	Outside, Run   string
	Worst          string
	NB, NC         string
	MedB, MedC     string
}

type actionView struct {
	Time, Kind          string
	Status, StatusClass string
	Trigger, Reason     string
	Actuate             string
}

// statusClass is the CSS class of a status, verdict or classification badge.
func statusClass(s string) string {
	switch s {
	case "pass":
		return "ok"
	case "marginal":
		return "warn"
	case "fail", "high", "low":
		return "bad"
	case "running":
		return "run"
	case "error", "unjudged":
		return "err"
	}
	return "muted" // aborted, nodata, none yet
}

// metricInfo is what the analysis snapshot says about a metric, when it can be read.
type metricInfo struct {
	name string
	spec judge.MetricSpec
	has  bool
}

// metricOrder lists a canary's metrics: the analysis' order, then any other name seen in
// results or points (an analysis snapshot that cannot be read still gives a page).
func metricOrder(a *config.Analysis, d *analysis.Detail, pts []analysis.MetricPoints) []metricInfo {
	var out []metricInfo
	seen := map[string]bool{}
	add := func(mi metricInfo) {
		if !seen[mi.name] {
			seen[mi.name] = true
			out = append(out, mi)
		}
	}
	if a != nil {
		for _, m := range a.Metrics {
			add(metricInfo{name: m.Name, spec: m.Spec, has: true})
		}
	}
	for i := len(d.Results) - 1; i >= 0; i-- {
		for _, m := range d.Results[i].Metrics {
			add(metricInfo{name: m.Name, spec: judge.MetricSpec{Name: m.Name, Group: m.Group, Kind: m.Kind, Critical: m.Critical}})
		}
	}
	for _, p := range pts {
		add(metricInfo{name: p.Metric})
	}
	return out
}

// judgeSummary says in one line how a metric is judged.
func judgeSummary(s judge.MetricSpec) string {
	s = s.WithDefaults()
	parts := []string{string(s.Kind)}
	switch s.Kind {
	case judge.KindMannWhitney:
		parts = append(parts, string(s.Direction)+" fails")
		if s.AllowedIncrease != 1 && s.Direction != judge.DirectionDecrease {
			parts = append(parts, "tolerates "+formatPercent(s.AllowedIncrease-1))
		}
		if s.AllowedDecrease != 1 && s.Direction != judge.DirectionIncrease {
			parts = append(parts, "tolerates "+formatPercent(s.AllowedDecrease-1))
		}
		if s.AllowedDelta != 0 {
			parts = append(parts, "tolerates ±"+strings.TrimPrefix(formatDelta(s.AllowedDelta, s.Unit), "+"))
		}
		parts = append(parts, fmt.Sprintf("%g%% confidence", s.Confidence*100))
	case judge.KindCounts, judge.KindHistogram:
		parts = append(parts, string(s.Direction)+" fails")
		if s.AllowedIncrease != 1 && s.Direction != judge.DirectionDecrease {
			parts = append(parts, "tolerates ×"+sig3(s.AllowedIncrease))
		}
		if s.AllowedDecrease != 1 && s.Direction != judge.DirectionIncrease {
			parts = append(parts, "tolerates ×"+sig3(s.AllowedDecrease))
		}
		if s.AllowedDelta != 0 {
			parts = append(parts, "tolerates ±"+strings.TrimPrefix(formatDelta(s.AllowedDelta, s.Unit), "+"))
		}
		parts = append(parts, fmt.Sprintf("false alarms ≤ %g%% over the canary", s.Alpha*100))
	default:
		bound := func(v *float64) string {
			if s.Kind == judge.KindRatio {
				return sig3(*v) + "× baseline"
			}
			return formatValue(*v, s.Unit)
		}
		if s.Min != nil {
			parts = append(parts, "min "+bound(s.Min))
		}
		if s.Max != nil {
			parts = append(parts, "max "+bound(s.Max))
		}
		if s.For > 0 {
			parts = append(parts, "for "+formatDuration(s.For))
		}
	}
	if s.Critical {
		parts = append(parts, "critical")
	}
	if s.MustHaveData {
		parts = append(parts, "must have data")
	}
	if s.RemoveOutliers {
		parts = append(parts, "outliers removed")
	}
	return strings.Join(parts, " · ")
}

// buildReport lays out a canary's report page. a may be nil (the snapshot could not be
// read): the page then lacks units, bounds and score thresholds, not data.
// buildReport lays out a canary's page; queries are a's queries as rendered for its
// cohorts (Scheduler.RenderQueries: as sent).
func buildReport(d *analysis.Detail, a *config.Analysis, queries []analysis.RenderedQuery, now time.Time) *reportPage {
	c := d.Canary
	p := &reportPage{
		pageBase: pageBase{Title: c.Name + " · " + string(c.Status) + " · canaryd", Root: "../", Generated: formatTime(now)},
		ID:       c.ID, Name: c.Name, Analysis: c.Analysis,
		Status: string(c.Status), StatusClass: statusClass(string(c.Status)),
		Reason: c.Reason, Score: "—", Verdict: "—",
		Judged: len(d.Results), Done: max(0, min(c.NextIndex-1, c.Intervals)), Total: c.Intervals,
		Running: c.Status == analysis.StatusRunning,
		Cohorts: cohortVars(c.Baseline, c.Canary), Vars: sortedKV(c.Vars),
		APIHref: "../api/v1/canaries/" + c.ID,
	}
	if c.Score != nil {
		p.Score = formatScore(*c.Score)
	}
	if c.Verdict != "" {
		p.Verdict = string(c.Verdict)
	}
	if c.Verdict == judge.VerdictNoData {
		// A score of 0 would read as every metric failing.
		p.Score, p.ScoreNote = "—", "nothing could be scored: every metric was nodata or error"
	}
	p.VerdictLabel = "verdict, last interval"
	if p.Running {
		p.VerdictLabel = "verdict so far (last interval; provisional)"
	}
	if p.Running {
		next := c.IntervalEnd(c.NextIndex)
		p.NextAt = formatTime(next)
		p.Refresh = refreshDelay(c, next, now)
		if p.Reason == "" {
			p.Reason = fmt.Sprintf("running: %d of %d intervals judged; next judgement at %s", len(d.Results), c.Intervals, p.NextAt)
		}
	}
	p.Warnings = analysis.PreflightWarnings(c.Preflight)
	for _, r := range c.Preflight {
		v := preflightView{Actuator: r.Actuator, Type: r.Type, Target: r.Target, Result: "ok", Class: "ok",
			Detail: r.Error, Seconds: fmt.Sprintf("%.2f s", r.Seconds)}
		if !r.OK {
			v.Result, v.Class = "failed", "bad"
		}
		if out := strings.TrimSpace(r.Output); out != "" {
			v.Output = out
		}
		p.Preflight = append(p.Preflight, v)
	}
	p.Facts = []kv{
		{"id", c.ID},
		{"analysis", c.Analysis},
		{"started", formatTime(c.Start)},
		{"lifetime", formatDuration(c.Lifetime) + " in " + fmt.Sprint(c.Intervals) + " intervals of " + formatDuration(c.Interval)},
		{"warmup", formatDuration(c.Warmup)},
		{"registered", formatTime(c.CreatedAt)},
	}
	if c.EndedAt != nil {
		p.Facts = append(p.Facts, kv{"ended", formatTime(*c.EndedAt) + " (after " + formatDuration(c.EndedAt.Sub(c.Start)) + ")"})
	}
	if c.Key != "" {
		p.Facts = append(p.Facts, kv{"key", c.Key})
	}
	if c.DryRun {
		p.Facts = append(p.Facts, kv{"dry run", "yes: actuators do not fire"})
	}
	p.Recovery = buildRecovery(c, a)
	if r := c.Recovery; r != nil && !r.Outcome.Final() {
		p.Refresh = int(min(max(c.Interval, 5*time.Second), time.Minute) / time.Second)
	}
	if a == nil {
		p.Notes = append(p.Notes, "The analysis this canary was registered with could not be read: values are shown without units, bounds and score thresholds.")
	}

	p.ScoreChart = scoreChart(d, a)
	pts := analysis.Series(d.Results)
	byName := map[string]analysis.MetricPoints{}
	for _, mp := range pts {
		byName[mp.Metric] = mp
	}
	x0, x1 := timeDomain(c, d.Results, pts)
	order := metricOrder(a, d, pts)
	anchors := map[string]string{}
	byMetric := map[string][]analysis.RenderedQuery{}
	for _, q := range queries {
		byMetric[q.Metric] = append(byMetric[q.Metric], q)
	}
	for i, mi := range order {
		anchors[mi.name] = fmt.Sprintf("m-%d", i)
		mv := buildMetric(i, mi, d, byName[mi.name], x0, x1)
		mv.Queries = byMetric[mi.name]
		p.Metrics = append(p.Metrics, mv)
	}
	if len(d.Results) == 0 && len(pts) == 0 && p.Running {
		// Empty chart pairs say nothing a line cannot.
		first := c.IntervalEnd(max(c.NextIndex, 1))
		p.NotJudgedYet = "No interval judged yet: the charts appear with the first judgement, at " + formatTime(first) + "."
	}
	if n := len(d.Results); n > 0 {
		last := d.Results[n-1]
		p.FailingIndex = last.Index
		for _, m := range last.Metrics {
			if m.Failed() || m.Classification == judge.ClassError {
				p.Failing = append(p.Failing, failingMetric{
					Anchor: anchors[m.Name], Name: m.Name, Classification: string(m.Classification), CSS: statusClass(string(m.Classification)),
					Critical: m.Critical, Reason: m.Reason,
				})
			}
		}
	}
	for i := len(d.Actions) - 1; i >= 0; i-- {
		act := d.Actions[i]
		fired := "yes"
		if a != nil {
			list, key := actuatorsFor(a, act.Status)
			fired = "yes: " + strings.Join(list, ", ")
			if len(list) == 0 {
				fired = "none: " + key + " lists no actuator"
			}
		}
		if !act.Actuate {
			fired = "no"
			if c.DryRun {
				fired = "no (dry run)"
			}
		}
		p.Actions = append(p.Actions, actionView{
			Time: formatTime(act.Time), Kind: string(act.Kind), Status: string(act.Status), StatusClass: statusClass(string(act.Status)),
			Trigger: string(act.Cause), Reason: act.Reason, Actuate: fired,
		})
	}
	return p
}

// actuatorsFor is the analysis' actuator list that a canary ending with status fires,
// and its key in the config.
func actuatorsFor(a *config.Analysis, status analysis.Status) ([]string, string) {
	switch status {
	case analysis.StatusPass:
		return a.OnPass, "on_pass"
	case analysis.StatusMarginal:
		return a.OnMarginal, "on_marginal"
	case analysis.StatusError:
		return a.OnError, "on_error"
	}
	return a.OnFail, "on_fail" // fail and aborted
}

// refreshDelay is how long a running canary's page waits before reloading: until just
// after the next judgement, but at least 5 s (a lagging scheduler must not make the page
// reload in a loop) and at most one interval or 5 min.
func refreshDelay(c *analysis.Canary, next, now time.Time) int {
	wait := next.Sub(now) + 2*time.Second
	hi := min(max(c.Interval, 5*time.Second), 5*time.Minute)
	wait = max(5*time.Second, min(wait, hi))
	return int((wait + time.Second - 1) / time.Second)
}

// timeDomain is the x range of the time-series charts (Unix ms): from the end of warmup
// to the end of the lifetime while the canary runs (so the charts show how far along it
// is), to its last judged interval once it has ended; widened to every stored point.
func timeDomain(c *analysis.Canary, rs []analysis.IntervalResult, pts []analysis.MetricPoints) (float64, float64) {
	t0 := float64(c.Start.Add(c.Warmup).UnixMilli())
	t1 := float64(c.Start.Add(c.Lifetime).UnixMilli())
	if c.Status.Final() && len(rs) > 0 {
		t1 = float64(rs[len(rs)-1].End.UnixMilli())
	}
	for _, mp := range pts {
		for _, s := range [][]analysis.TimeValue{mp.Baseline, mp.Canary} {
			if len(s) > 0 {
				t0, t1 = min(t0, s[0][0]), max(t1, s[len(s)-1][0])
			}
		}
	}
	if t1 <= t0 {
		t1 = t0 + float64(c.Interval.Milliseconds())
	}
	return t0, t1
}

func scoreChart(d *analysis.Detail, a *config.Analysis) chart {
	ch := newChart("score", "score", "", "Score of each judged interval")
	n := max(d.Canary.Intervals, 1)
	sx := scale{0.5, float64(n) + 0.5, ch.L, ch.R}
	sy := scale{0, 100, ch.B, ch.T}
	for _, v := range []float64{0, 25, 50, 75, 100} {
		ch.YTicks = append(ch.YTicks, tick{Pos: px(sy.at(v)), Label: fmt.Sprint(v)})
	}
	step := max(1, niceStep(float64(n), 10))
	for i := step; i <= float64(n); i += step {
		ch.XTicks = append(ch.XTicks, tick{Pos: px(sx.at(i)), Label: fmt.Sprint(i)})
	}
	if a != nil {
		for _, th := range []struct {
			class string
			v     float64
		}{{"pass", a.Score.Pass}, {"marginal", a.Score.Marginal}} {
			y := sy.at(th.v)
			ch.Rules = append(ch.Rules, rule{Class: "threshold " + th.class, X1: px(ch.L), Y1: px(y), X2: px(ch.R), Y2: px(y),
				// Under the line: above it, the label of a threshold near 100 is struck
				// through by the top grid line.
				Label: fmt.Sprintf("%s ≥ %g", th.class, th.v), LX: px(ch.R - 4), LY: px(y + 11), Anchor: "end"})
		}
	}
	if len(d.Results) == 0 {
		ch.Empty = "no interval judged yet"
		return ch
	}
	// An interval with nothing to score has no score: a dot at 0 would read as a failure.
	scored := make([]analysis.IntervalResult, 0, len(d.Results))
	for _, r := range d.Results {
		if r.Score.Verdict != judge.VerdictNoData {
			scored = append(scored, r)
		}
	}
	if len(scored) == 0 {
		ch.Empty = "nothing could be scored in any interval"
		return ch
	}
	var pb pathBuilder
	for i, r := range scored {
		x, y := sx.at(float64(r.Index)), sy.at(r.Score.Score)
		c := byte('L')
		if i == 0 {
			c = 'M'
		}
		pb.cmd(c, x, y)
		ch.Dots = append(ch.Dots, dot{Class: "verdict " + statusClass(string(r.Score.Verdict)), X: px(x), Y: px(y),
			Title: fmt.Sprintf("interval %d: %s (%s)", r.Index, formatScore(r.Score.Score), r.Score.Verdict)})
	}
	if len(scored) == 1 {
		pb.cmd('h', 0.1)
	}
	ch.Series = append(ch.Series, series{Class: "series score", Label: "score", D: pb.String(), Points: len(scored)})
	return ch
}

func buildMetric(i int, mi metricInfo, d *analysis.Detail, mp analysis.MetricPoints, x0, x1 float64) metricView {
	c := d.Canary
	unit := mi.spec.Unit
	mv := metricView{
		Anchor: fmt.Sprintf("m-%d", i), Name: mi.name, Group: mi.spec.Group, Kind: string(mi.spec.Kind), Unit: unit,
		Critical: mi.spec.Critical, Classification: "none yet",
		BaselinePts: len(mp.Baseline), CanaryPts: len(mp.Canary),
	}
	if mi.has {
		mv.Judge = judgeSummary(mi.spec)
	}
	// Results of this metric, latest first; the latest one with a Mann-Whitney result
	// gives the shift drawn on the ECDF.
	var shiftRes *judge.MetricResult
	shiftIdx := 0
	var failed []span
	for k := len(d.Results) - 1; k >= 0; k-- {
		r := d.Results[k]
		for j := range r.Metrics {
			m := &r.Metrics[j]
			if m.Name != mi.name {
				continue
			}
			if mv.LatestIndex == 0 {
				mv.LatestIndex, mv.Classification, mv.Reason = r.Index, string(m.Classification), m.Reason
				if mv.Kind == "" {
					mv.Kind = string(m.Kind)
				}
			}
			if shiftRes == nil && m.Kind == judge.KindMannWhitney && m.MannWhitney.NBaseline > 0 && m.MannWhitney.NCanary > 0 {
				shiftRes, shiftIdx = m, r.Index
			}
			row := newResultRow(c, r, m, unit)
			mv.HasMW = mv.HasMW || row.P != "—"
			mv.HasWindow = mv.HasWindow || row.Outside != "—"
			if len(mv.Rows) < maxMetricRows {
				mv.Rows = append(mv.Rows, row)
			} else {
				mv.Older++
			}
			if m.Failed() || m.Classification == judge.ClassError {
				class := "band failed"
				if m.Classification == judge.ClassError {
					class = "band error"
				}
				from, to := float64(c.IntervalEnd(r.Index-1).UnixMilli()), float64(r.End.UnixMilli())
				// Runs of failed intervals make one band, so that a long canary's chart
				// stays small.
				if n := len(failed); n > 0 && failed[n-1].class == class && failed[n-1].from == to {
					failed[n-1].from = from
					failed[n-1].title = fmt.Sprintf("intervals %d–%d: %s", r.Index, failed[n-1].last, m.Classification)
				} else {
					failed = append(failed, span{class: class, from: from, to: to, last: r.Index,
						title: fmt.Sprintf("interval %d: %s", r.Index, m.Classification)})
				}
			}
			break
		}
	}
	mv.CSS = statusClass(mv.Classification)
	mv.TS = timeSeriesChart(i, mi, mp, x0, x1, failed)
	mv.Day = time.UnixMilli(int64(x0)).UTC().Format("2006-01-02")
	if d1 := time.UnixMilli(int64(x1)).UTC().Format("2006-01-02"); d1 != mv.Day {
		mv.Day += " to " + d1
	}
	if mi.spec.Kind == judge.KindRatio && len(mp.Baseline) > 0 {
		var b []string
		for _, v := range []*float64{mi.spec.Min, mi.spec.Max} {
			if v != nil {
				b = append(b, sig3(*v)+"×")
			}
		}
		if len(b) > 0 {
			mv.RatioBound = "bound: " + strings.Join(b, " and ") + " the baseline"
		}
	}
	mv.ECDF, mv.ShiftNote = ecdfChart(i, mi, mp, shiftRes, shiftIdx)
	mv.CS, mv.CSNote, mv.HasCS = sequentialChart(i, mi, d, x0, x1)
	return mv
}

// maxMetricRows bounds each metric's table to its latest intervals; the JSON API has all.
const maxMetricRows = 60

// newResultRow lays out one interval's result of one metric, with "—" for the figures
// its judge does not have.
func newResultRow(c *analysis.Canary, r analysis.IntervalResult, m *judge.MetricResult, unit string) resultRow {
	row := resultRow{
		Index: r.Index, Window: intervalSpan(c, r), Classification: string(m.Classification), Reason: m.Reason,
		CSS: statusClass(string(m.Classification)),
		NB:  fmt.Sprint(m.Baseline.N), NC: fmt.Sprint(m.Canary.N), P: "—", Shift: "—", CI: "—", Relative: "—",
		Outside: "—", Run: "—", Worst: "—", MedB: "—", MedC: "—",
	}
	if m.Baseline.N > 0 {
		row.MedB = formatValue(m.Baseline.Median, unit)
	}
	if m.Canary.N > 0 {
		row.MedC = formatValue(m.Canary.Median, unit)
	}
	if mw := m.MannWhitney; mw.NBaseline > 0 {
		row.P = formatP(mw.PValue)
		row.Shift = formatDelta(mw.Estimate, unit)
		row.CI = "[" + formatDelta(mw.CILow, unit) + ", " + formatDelta(mw.CIHigh, unit) + "]"
		if m.Relative != (judge.Relative{}) {
			row.Relative = formatPercent(m.Relative.Estimate)
		}
	}
	if w := m.Window; m.Kind != judge.KindMannWhitney && (m.Classification == judge.ClassPass || m.Failed()) && m.Classification != judge.ClassNoData {
		row.Outside = fmt.Sprint(w.Outside)
		row.Run = fmt.Sprintf("%d (%s)", w.LongestRun, formatDuration(time.Duration(w.LongestSeconds*float64(time.Second))))
		if w.Outside > 0 {
			if m.Kind == judge.KindRatio {
				row.Worst = sig3(w.Worst) + "×"
			} else {
				row.Worst = formatValue(w.Worst, unit)
			}
		}
	}
	return row
}

// intervalSpan is the part of the lifetime an interval added, as clock times (UTC), to
// the second only when a bound is not on a minute.
func intervalSpan(c *analysis.Canary, r analysis.IntervalResult) string {
	from := c.IntervalEnd(r.Index - 1)
	if from.Before(r.Start) {
		from = r.Start
	}
	layout := "15:04"
	if from.Second() != 0 || r.End.Second() != 0 {
		layout = "15:04:05"
	}
	return from.UTC().Format(layout) + "–" + r.End.UTC().Format(layout)
}

// valueRange is the smallest and largest value of some series (ok false when empty).
func valueRange(ss ...[]analysis.TimeValue) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s {
			lo, hi = min(lo, p[1]), max(hi, p[1])
		}
	}
	return lo, hi, lo <= hi
}

// padRange adds 5% on each side, without crossing zero for values that never do.
func padRange(lo, hi float64) (float64, float64) {
	pad := (hi - lo) * 0.05
	nlo, nhi := lo-pad, hi+pad
	if lo >= 0 && nlo < 0 {
		nlo = 0
	}
	if hi <= 0 && nhi > 0 {
		nhi = 0
	}
	return nlo, nhi
}

// span is a stretch of time (Unix ms) to shade on a time-series chart.
type span struct {
	from, to     float64
	class, title string
	last         int // the last interval of the run
}

func timeSeriesChart(i int, mi metricInfo, mp analysis.MetricPoints, x0, x1 float64, failed []span) chart {
	ch := newChart(fmt.Sprintf("ts-%d", i), "timeseries", mi.name, mi.name+": baseline and canary over time")
	sx := scale{x0, x1, ch.L, ch.R}
	ch.XTicks = timeTicks(x0, x1, 7, sx)
	lo, hi, ok := valueRange(mp.Baseline, mp.Canary)
	var bounds []float64
	if mi.spec.Kind == judge.KindThreshold {
		for _, b := range []*float64{mi.spec.Min, mi.spec.Max} {
			if b != nil {
				bounds = append(bounds, *b)
			}
		}
	}
	for _, f := range failed {
		l, r := sx.clampTo(sx.at(f.from)), sx.clampTo(sx.at(f.to))
		if r > l {
			ch.Bands = append(ch.Bands, band{Class: f.class, Title: f.title, X: px(l), Y: px(ch.T), W: px(r - l), H: px(ch.B - ch.T)})
		}
	}
	if !ok {
		// A value axis with nothing on it would only suggest a scale.
		ch.Empty = "no points stored for this metric"
		return ch
	}
	for _, b := range bounds {
		lo, hi = min(lo, b), max(hi, b)
	}
	// A ratio judge's bound is relative: the baseline times it, at each point.
	var ratioBounds [][]analysis.TimeValue
	if mi.spec.Kind == judge.KindRatio {
		for _, b := range []*float64{mi.spec.Min, mi.spec.Max} {
			if b == nil {
				continue
			}
			pts := make([]analysis.TimeValue, len(mp.Baseline))
			for k, p := range mp.Baseline {
				pts[k] = analysis.TimeValue{p[0], p[1] * *b}
			}
			ratioBounds = append(ratioBounds, pts)
			if blo, bhi, ok := valueRange(pts); ok {
				lo, hi = min(lo, blo), max(hi, bhi)
			}
		}
	}
	lo, hi = padRange(lo, hi)
	lo, hi, step := niceDomain(lo, hi, 5)
	sy := scale{lo, hi, ch.B, ch.T}
	ch.YTicks = valueTicks(lo, hi, step, mi.spec.Unit, sy)
	for _, b := range bounds {
		y := sy.at(b)
		ch.Rules = append(ch.Rules, rule{Class: "bound", X1: px(ch.L), Y1: px(y), X2: px(ch.R), Y2: px(y),
			Label: "bound " + formatValue(b, mi.spec.Unit), LX: px(ch.L + 4), LY: px(y - 4), Anchor: "start"})
	}
	gap := 3 * typicalGap(mp.Baseline)
	if g := 3 * typicalGap(mp.Canary); g > gap {
		gap = g
	}
	for _, s := range []struct {
		class string
		pts   []analysis.TimeValue
	}{{"baseline", mp.Baseline}, {"canary", mp.Canary}} {
		d, n := linePath(s.pts, sx, sy, gap)
		ch.Series = append(ch.Series, series{Class: "series " + s.class, Label: fmt.Sprintf("%s: %d points", s.class, len(s.pts)), D: d, Points: n})
	}
	for _, pts := range ratioBounds {
		d, n := linePath(pts, sx, sy, gap)
		ch.Series = append(ch.Series, series{Class: "series bound", Label: "the ratio's bound: the baseline times it", D: d, Points: n})
	}
	return ch
}

func sortedValues(pts []analysis.TimeValue) []float64 {
	v := make([]float64, len(pts))
	for i, p := range pts {
		v[i] = p[1]
	}
	slices.Sort(v)
	return v
}

func ecdfChart(i int, mi metricInfo, mp analysis.MetricPoints, mw *judge.MetricResult, mwIndex int) (chart, string) {
	ch := newChart(fmt.Sprintf("ecdf-%d", i), "ecdf", mi.name, mi.name+": distribution of both cohorts (ECDF)")
	unit := mi.spec.Unit
	sy := scale{0, 1, ch.B, ch.T}
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		ch.YTicks = append(ch.YTicks, tick{Pos: px(sy.at(v)), Label: fmt.Sprintf("%g%%", v*100)})
	}
	b, c := sortedValues(mp.Baseline), sortedValues(mp.Canary)
	lo, hi, ok := valueRange(mp.Baseline, mp.Canary)
	var note string
	var bm, est, ciLo, ciHi float64
	if mw != nil {
		r := mw.MannWhitney
		bm, est, ciLo, ciHi = mw.Baseline.Median, r.Estimate, r.CILow, r.CIHigh
		if ok {
			lo, hi = min(lo, bm+ciLo, bm+est), max(hi, bm+ciHi, bm+est)
		}
		rel := ""
		if mw.Relative != (judge.Relative{}) {
			rel = fmt.Sprintf(" (%s, CI %s to %s)", formatPercent(mw.Relative.Estimate), formatPercent(mw.Relative.Low), formatPercent(mw.Relative.High))
		}
		note = fmt.Sprintf("Hodges-Lehmann shift (canary − baseline) at interval %d: %s, %g%% CI [%s, %s]%s; p = %s (%s, %d baseline and %d canary points).",
			mwIndex, formatDelta(est, unit), r.Confidence*100, formatDelta(ciLo, unit), formatDelta(ciHi, unit), rel,
			formatP(r.PValue), r.Method, r.NBaseline, r.NCanary)
	} else if mi.spec.Kind != "" && mi.spec.Kind != judge.KindMannWhitney {
		note = fmt.Sprintf("A %s judge has no shift estimate; the chart shows both cohorts' values.", mi.spec.Kind)
	} else {
		note = "No shift estimate yet: no interval had enough points in both cohorts."
	}
	if !ok {
		ch.Empty = "no points stored for this metric"
		return ch, note
	}
	lo, hi = padRange(lo, hi)
	lo, hi, step := niceDomain(lo, hi, 6)
	sx := scale{lo, hi, ch.L, ch.R}
	ch.XTicks = valueTicks(lo, hi, step, unit, sx)
	ch.Series = append(ch.Series,
		series{Class: "series baseline", Label: fmt.Sprintf("baseline: %d points", len(b)), D: ecdfPath(b, 0, sx, sy), Points: len(b)},
		series{Class: "series canary", Label: fmt.Sprintf("canary: %d points", len(c)), D: ecdfPath(c, 0, sx, sy), Points: len(c)},
	)
	if mw != nil && len(b) > 0 {
		ch.Series = append(ch.Series, series{Class: "series baseline-shifted", Label: "baseline moved by the estimated shift",
			D: ecdfPath(b, est, sx, sy), Points: len(b)})
		y := sy.at(0.5)
		l, r := sx.at(bm+ciLo), sx.at(bm+ciHi)
		ch.Bands = append(ch.Bands, band{Class: "shift-ci", X: px(l), Y: px(y - 6), W: px(max(r-l, 1)), H: 12,
			Title: fmt.Sprintf("%g%% CI of the shift: [%s, %s]", mw.MannWhitney.Confidence*100, formatDelta(ciLo, unit), formatDelta(ciHi, unit))})
		ch.Rules = append(ch.Rules,
			rule{Class: "median baseline", X1: px(sx.at(bm)), Y1: px(ch.T), X2: px(sx.at(bm)), Y2: px(ch.B)},
			rule{Class: "median canary", X1: px(sx.at(mw.Canary.Median)), Y1: px(ch.T), X2: px(sx.at(mw.Canary.Median)), Y2: px(ch.B)},
			rule{Class: "shift", X1: px(sx.at(bm)), Y1: px(y), X2: px(sx.at(bm + est)), Y2: px(y),
				// Above the interval's band, on a halo (CSS) where it crosses a curve.
				Label: "shift " + formatDelta(est, unit), LX: px(sx.at(bm + est/2)), LY: px(y - 12), Anchor: "middle"},
		)
	}
	return ch, note
}

type listPage struct {
	pageBase
	Filter  string
	Filters []filterLink
	Rows    []listRow
	// Total is how many canaries the filter holds; the page shows Rows of them.
	Total int
	// NextHref is the next (older) page, FirstHref the newest page, when there is one.
	NextHref, FirstHref string
}

type filterLink struct {
	Label, Href string
	Count       int
	Active      bool
	Class       string
}

type listRow struct {
	ID, Href, Name, Analysis string
	Status, StatusClass      string
	Verdict, VerdictClass    string
	Score                    string
	Age, Created             string
	Progress                 string
	Reason                   string
}

// buildList lays out a page of the list: the canaries with the filter's status, newest
// first, with links to the next page and back to the first.
func buildList(page analysis.Page, counts map[analysis.Status]int, filter analysis.Status, paged bool, now time.Time) *listPage {
	p := &listPage{pageBase: pageBase{Title: "Canaries · canaryd", Root: "./", Generated: formatTime(now)}, Filter: string(filter)}
	all := 0
	for _, n := range counts {
		all += n
	}
	p.Filters = append(p.Filters, filterLink{Label: "all", Href: "./", Count: all, Active: filter == ""})
	for _, s := range analysis.Statuses {
		p.Filters = append(p.Filters, filterLink{Label: string(s), Href: "?status=" + string(s), Count: counts[s],
			Active: filter == s, Class: statusClass(string(s))})
	}
	p.Total = all
	first := "./"
	if filter != "" {
		p.Total = counts[filter]
		first = "?status=" + url.QueryEscape(string(filter))
	}
	if paged {
		p.FirstHref = first
	}
	if page.Next != nil {
		q := url.Values{"cursor": {page.Next.Encode()}}
		if filter != "" {
			q.Set("status", string(filter))
		}
		p.NextHref = "?" + q.Encode()
	}
	for _, c := range page.Canaries {
		row := listRow{
			ID: c.ID, Href: "canaries/" + c.ID, Name: c.Name, Analysis: c.Analysis,
			Status: string(c.Status), StatusClass: statusClass(string(c.Status)),
			Verdict: "—", VerdictClass: "muted", Score: "—",
			Age: formatDuration(now.Sub(c.CreatedAt)) + " ago", Created: formatTime(c.CreatedAt),
			Progress: fmt.Sprintf("%d/%d", max(0, min(c.NextIndex-1, c.Intervals)), c.Intervals),
			Reason:   c.Reason,
		}
		if c.Verdict != "" {
			row.Verdict, row.VerdictClass = string(c.Verdict), statusClass(string(c.Verdict))
			if c.Status == analysis.StatusRunning {
				// The last interval's verdict is not the canary's: never a green PASS
				// beside a canary that may still fail.
				row.Verdict, row.VerdictClass = string(c.Verdict)+" so far", "muted"
			}
		}
		if c.Score != nil && c.Verdict != judge.VerdictNoData {
			row.Score = formatScore(*c.Score)
		}
		p.Rows = append(p.Rows, row)
	}
	// New canaries and verdicts appear without a manual reload; faster while any runs.
	p.Refresh = 60
	if counts[analysis.StatusRunning] > 0 {
		p.Refresh = 10
	}
	return p
}
