package judge

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Default score thresholds, as Kayenta's.
const (
	DefaultPassScore     = 95
	DefaultMarginalScore = 75
)

// kayentaNoDataShare is Kayenta's bound on metrics with no data: at this share or more,
// the score is 0.
const kayentaNoDataShare = 0.5

// WithDefaults fills zero thresholds, rules and the unjudged verdict with the defaults.
func (t Thresholds) WithDefaults() Thresholds {
	if t.Pass == 0 && t.Marginal == 0 {
		t.Pass, t.Marginal = DefaultPassScore, DefaultMarginalScore
	}
	if t.Rules == "" {
		t.Rules = RulesCanaryd
	}
	if t.Unjudged == "" {
		t.Unjudged = VerdictUnjudged
		if t.Rules == RulesKayenta {
			t.Unjudged = VerdictFail
		}
	}
	return t
}

// Score rolls one interval's metric results into a 0..100 score and a verdict.
//
// Muted metrics are left out entirely. Each group scores the share of its metrics that
// passed (a metric in several groups counts in each); metrics with no data are left
// out unless they must have data (then they count as failed), and metrics in error are
// left out and counted. Groups weigh as the groups map says, renormalised over the
// groups that had something to score; a group the map does not name weighs the mean of
// the named ones (equal weights when the map is empty). A failed critical metric fails
// the canary whatever the score. A critical metric that could not be judged (no data,
// or in error) never lets the verdict be a pass or marginal: it is t.Unjudged, unless the
// score fails already. No scorable metric at
// all is VerdictNoData, never a pass. Under RulesKayenta the score is 0 when a critical
// metric is anything but a pass or when half the metrics or more have no data.
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
	noData, counted := 0, 0
	for _, r := range results {
		if r.Muted {
			continue // judged and reported, never scored (Kayenta's muted)
		}
		counted++
		if r.Critical && r.Unjudged() {
			out.CriticalUnjudged = append(out.CriticalUnjudged, r.Name)
		}
		if r.Classification == ClassError {
			out.Errors++
			continue
		}
		if r.Critical && r.Failed() {
			out.CriticalFailures = append(out.CriticalFailures, r.Name)
		}
		if r.Classification == ClassNoData && !r.MustHaveData {
			noData++
			continue
		}
		for _, name := range r.InGroups() {
			i, ok := index[name]
			if !ok {
				w, named := groups[name]
				if !named {
					w = meanWeight
				}
				i = len(out.Groups)
				index[name] = i
				out.Groups = append(out.Groups, GroupScore{Name: name, Weight: w})
			}
			g := &out.Groups[i]
			g.Scored++
			if !r.Failed() {
				g.Passed++
			}
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
	unjudged := fmt.Sprintf("critical metric could not be judged: %s", unjudgedList(results))
	// zeroed: Kayenta's 0 for an unjudged critical metric, which t.Unjudged then turns
	// into the verdict (so that unjudged_critical: error still means error).
	zeroed := false
	if t.Rules == RulesKayenta {
		out.Score = math.Round(100*out.Score) / 100
		switch {
		case len(out.CriticalFailures) > 0:
			out.Score = 0
		case len(out.CriticalUnjudged) > 0:
			out.Score, zeroed = 0, true
		case counted > 0 && float64(noData) >= kayentaNoDataShare*float64(counted):
			out.Score = 0
			out.Verdict = VerdictFail
			out.Reason = fmt.Sprintf("%d of %d metrics had no data (%.0f%% or more scores 0, as in Kayenta)",
				noData, counted, 100*kayentaNoDataShare)
			return out
		}
	}
	switch {
	case len(out.CriticalFailures) > 0:
		out.Verdict = VerdictFail
		out.Reason = fmt.Sprintf("critical metric failed: %s", strings.Join(out.CriticalFailures, ", "))
	case len(out.CriticalUnjudged) > 0 && t.Unjudged == VerdictFail:
		out.Verdict = VerdictFail
		out.Reason = unjudged
	case len(out.Groups) == 0:
		out.Verdict = VerdictNoData
		out.Reason = fmt.Sprintf("no metric could be scored (%d with no data, %d in error)",
			counted-out.Errors, out.Errors)
	case out.Score < t.Marginal && !zeroed:
		// What could be judged fails already; the unjudged metric could only add to it.
		out.Verdict = VerdictFail
		out.Reason = fmt.Sprintf("score %.1f below marginal %.0f", out.Score, t.Marginal)
		if len(out.CriticalUnjudged) > 0 {
			out.Reason += "; " + unjudged
		}
	case len(out.CriticalUnjudged) > 0:
		out.Verdict = VerdictUnjudged
		out.Reason = unjudged
	case out.Score >= t.Pass:
		out.Verdict = VerdictPass
		out.Reason = fmt.Sprintf("score %.1f >= pass %.0f", out.Score, t.Pass)
	default:
		out.Verdict = VerdictMarginal
		out.Reason = fmt.Sprintf("score %.1f below pass %.0f, >= marginal %.0f", out.Score, t.Pass, t.Marginal)
	}
	return out
}

// unjudgedList names each critical metric that could not be judged, with its class.
func unjudgedList(results []MetricResult) string {
	var parts []string
	for _, r := range results {
		if r.Critical && !r.Muted && r.Unjudged() {
			parts = append(parts, fmt.Sprintf("%s (%s)", r.Name, r.Classification))
		}
	}
	return strings.Join(parts, ", ")
}
