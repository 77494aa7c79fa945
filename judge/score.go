package judge

import (
	"fmt"
	"slices"
	"strings"
)

// Default score thresholds, as Kayenta's.
const (
	DefaultPassScore     = 95
	DefaultMarginalScore = 75
)

// WithDefaults fills zero thresholds with the defaults.
func (t Thresholds) WithDefaults() Thresholds {
	if t.Pass == 0 && t.Marginal == 0 {
		return Thresholds{Pass: DefaultPassScore, Marginal: DefaultMarginalScore}
	}
	return t
}

// Score rolls one interval's metric results into a 0..100 score and a verdict.
//
// Each group scores the share of its metrics that passed; metrics with no data are left
// out unless they must have data (then they count as failed), and metrics in error are
// left out and counted. Groups weigh as the groups map says, renormalised over the
// groups that had something to score; a group the map does not name weighs the mean of
// the named ones (equal weights when the map is empty). A failed critical metric fails
// the canary whatever the score; no scorable metric at all is VerdictNoData, never a
// pass.
func Score(results []MetricResult, groups map[string]float64, t Thresholds) ScoreResult {
	t = t.WithDefaults()
	var out ScoreResult
	meanWeight := 1.0
	if len(groups) > 0 {
		sum := 0.0
		for _, w := range groups {
			sum += w
		}
		meanWeight = sum / float64(len(groups))
	}
	index := map[string]int{}
	for _, r := range results {
		if r.Classification == ClassError {
			out.Errors++
			continue
		}
		if r.Critical && r.Failed() {
			out.CriticalFailures = append(out.CriticalFailures, r.Name)
		}
		if r.Classification == ClassNoData && !r.MustHaveData {
			continue
		}
		i, ok := index[r.Group]
		if !ok {
			w, named := groups[r.Group]
			if !named {
				w = meanWeight
			}
			i = len(out.Groups)
			index[r.Group] = i
			out.Groups = append(out.Groups, GroupScore{Name: r.Group, Weight: w})
		}
		g := &out.Groups[i]
		g.Scored++
		if !r.Failed() {
			g.Passed++
		}
	}
	slices.SortFunc(out.Groups, func(a, b GroupScore) int { return strings.Compare(a.Name, b.Name) })
	totalWeight := 0.0
	for _, g := range out.Groups {
		totalWeight += g.Weight
	}
	for i := range out.Groups {
		g := &out.Groups[i]
		g.Score = 100 * float64(g.Passed) / float64(g.Scored)
		if totalWeight > 0 {
			g.Weight /= totalWeight
		} else {
			g.Weight = 1 / float64(len(out.Groups)) // every named weight is 0: count them alike
		}
		out.Score += g.Weight * g.Score
	}
	switch {
	case len(out.CriticalFailures) > 0:
		out.Verdict = VerdictFail
		out.Reason = fmt.Sprintf("critical metric failed: %s", strings.Join(out.CriticalFailures, ", "))
	case len(out.Groups) == 0:
		out.Verdict = VerdictNoData
		out.Reason = fmt.Sprintf("no metric could be scored (%d with no data, %d in error)",
			len(results)-out.Errors, out.Errors)
	case out.Score >= t.Pass:
		out.Verdict = VerdictPass
		out.Reason = fmt.Sprintf("score %.1f >= pass %.0f", out.Score, t.Pass)
	case out.Score >= t.Marginal:
		out.Verdict = VerdictMarginal
		out.Reason = fmt.Sprintf("score %.1f below pass %.0f, >= marginal %.0f", out.Score, t.Pass, t.Marginal)
	default:
		out.Verdict = VerdictFail
		out.Reason = fmt.Sprintf("score %.1f below marginal %.0f", out.Score, t.Marginal)
	}
	return out
}
