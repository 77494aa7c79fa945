package judge

import (
	"fmt"
	"math"
	"time"
)

// classifyWindow runs the threshold and ratio judges: the runbook rules "error rate > 2%
// for 5m" and "p99 > 1.5× baseline for 10m". Points are one step apart; a missing point
// (removed by the NaN strategy) breaks a run, so a gap in the data never stretches one.
func (s *Scratch) classifyWindow(m MetricSpec, baseline, canary []float64, res *MetricResult) {
	if m.Kind == KindRatio && len(baseline) != len(canary) {
		res.Classification = ClassError
		res.Reason = fmt.Sprintf("%s: ratio judge needs aligned cohorts: baseline has %d points, canary %d",
			m.Name, len(baseline), len(canary))
		return
	}
	b, bMissing := cleanInto(s.clean[0], baseline, m.NaNStrategy)
	c, cMissing := cleanInto(s.clean[1], canary, m.NaNStrategy)
	s.clean[0], s.clean[1] = b, c
	res.Baseline = CohortSummary{N: len(b), Missing: bMissing, Median: medianSorted(sortedCopy(&s.y, b))}
	res.Canary = CohortSummary{N: len(c), Missing: cMissing, Median: medianSorted(sortedCopy(&s.x, c))}

	lo, hi := math.Inf(-1), math.Inf(1)
	if m.Min != nil {
		lo = *m.Min
	}
	if m.Max != nil {
		hi = *m.Max
	}
	var (
		judged              int
		runHigh, runLow     int // current runs of consecutive points above / below
		longHigh, longLow   int
		worstHigh, worstLow = math.Inf(-1), math.Inf(1)
		outside             int
	)
	for i, cv := range canary {
		v, ok := cv, isFinite(cv)
		if m.Kind == KindRatio {
			v, ok = stepRatio(baseline[i], cv, m.NaNStrategy)
		} else if !ok && m.NaNStrategy == NaNZero {
			v, ok = 0, true
		}
		if !ok {
			runHigh, runLow = 0, 0
			continue
		}
		judged++
		switch {
		case v > hi:
			outside++
			runHigh, runLow = runHigh+1, 0
			longHigh = max(longHigh, runHigh)
			if isFinite(v) {
				worstHigh = max(worstHigh, v)
			}
		case v < lo:
			outside++
			runLow, runHigh = runLow+1, 0
			longLow = max(longLow, runLow)
			worstLow = min(worstLow, v)
		default:
			runHigh, runLow = 0, 0
		}
	}
	if judged < m.MinPoints {
		res.Classification = ClassNoData
		res.Reason = fmt.Sprintf("%s: no data: %d usable points, %d needed%s",
			m.Name, judged, m.MinPoints, missingNote(bMissing, cMissing))
		return
	}
	span := func(run int) time.Duration { return time.Duration(max(run-1, 0)) * m.Step }
	breaks := func(run int) bool { return run > 0 && span(run) >= m.For }

	longest, worst := longHigh, worstHigh
	if longLow > longHigh {
		longest, worst = longLow, worstLow
	}
	if !isFinite(worst) {
		worst = 0
	}
	res.Window = WindowResult{Outside: outside, LongestRun: longest, LongestSeconds: span(longest).Seconds(), Worst: worst}
	what := m.Name
	if m.Kind == KindRatio {
		what = m.Name + " canary/baseline"
	}
	switch {
	case breaks(longHigh):
		res.Classification = ClassHigh
		res.Window.LongestRun, res.Window.LongestSeconds, res.Window.Worst = longHigh, span(longHigh).Seconds(), finiteOr(worstHigh)
		res.Reason = fmt.Sprintf("%s above %s for %s (limit for %s), up to %s",
			what, s.bound(m, hi), span(longHigh), m.For, s.bound(m, worstHigh))
	case breaks(longLow):
		res.Classification = ClassLow
		res.Window.LongestRun, res.Window.LongestSeconds, res.Window.Worst = longLow, span(longLow).Seconds(), finiteOr(worstLow)
		res.Reason = fmt.Sprintf("%s below %s for %s (limit for %s), down to %s",
			what, s.bound(m, lo), span(longLow), m.For, s.bound(m, worstLow))
	default:
		res.Classification = ClassPass
		if outside == 0 {
			res.Reason = fmt.Sprintf("%s within bounds at all %d points", what, judged)
		} else {
			res.Reason = fmt.Sprintf("%s outside bounds at %d of %d points, never for %s", what, outside, judged, m.For)
		}
	}
}

func finiteOr(v float64) float64 {
	if isFinite(v) {
		return v
	}
	return 0
}

// bound formats a threshold value, or a ratio as "1.5×".
func (s *Scratch) bound(m MetricSpec, v float64) string {
	if m.Kind == KindRatio {
		if math.IsInf(v, 1) {
			return "∞× (baseline at 0)"
		}
		return fmt.Sprintf("%.3g×", v)
	}
	return formatValue(v, m.Unit)
}

// stepRatio is canary/baseline at one step. Both at zero is "no change" (1); a canary
// above a zero baseline is +Inf, outside any finite max.
func stepRatio(b, c float64, strategy NaNStrategy) (float64, bool) {
	if !isFinite(b) || !isFinite(c) {
		if strategy != NaNZero {
			return 0, false
		}
		if !isFinite(b) {
			b = 0
		}
		if !isFinite(c) {
			c = 0
		}
	}
	switch {
	case b == 0 && c == 0:
		return 1, true
	case b == 0:
		return math.Inf(int(sign(c))), true
	}
	return c / b, true
}
