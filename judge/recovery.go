package judge

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// RecoveryResult says whether one cohort's latest points are back within a metric's
// tolerance of the service's pre-canary reference (the recovery watch after a rollback).
type RecoveryResult struct {
	// Within: back within tolerance. NoData: too few points on a side to say (Within is
	// then false).
	Within bool `json:"within"`
	NoData bool `json:"nodata,omitempty"`
	// Reference and Current are the medians of the points judged (after NaN handling).
	Reference  float64 `json:"reference"`
	Current    float64 `json:"current"`
	NReference int     `json:"n_reference"`
	NCurrent   int     `json:"n_current"`
	Reason     string  `json:"reason"`
}

// RecoverySupported reports whether the recovery watch can judge a metric of this kind:
// every kind but histogram (whose buckets it does not sum).
func RecoverySupported(k Kind) bool {
	return k == KindMannWhitney || k == KindThreshold || k == KindRatio || k == KindCounts
}

// RecoveryCounts judges a counts metric after the rollback: the errors and requests a
// cohort had since (summed over the steps) against the error rate before the canary
// started. The tolerated rate is the reference's times allowed_increase, or plus
// allowed_delta when that is more (the counts judge's tolerance); the metric is outside
// when the errors seen are significantly more than that rate gives (a one-sided
// binomial test at the metric's alpha; fewer for direction decrease; either spends
// alpha/2 per side). It is pure: no clock, no I/O.
func RecoveryCounts(m MetricSpec, refErrors, refRequests, curErrors, curRequests float64) RecoveryResult {
	m = m.WithDefaults()
	res := RecoveryResult{NReference: int(math.Round(refRequests)), NCurrent: int(math.Round(curRequests))}
	switch {
	case !(curRequests >= 1) || math.IsInf(curRequests, 0):
		res.NoData = true
		res.Reason = "no requests since the rollback"
		return res
	case !(refRequests >= 1) || math.IsInf(refRequests, 0):
		res.NoData = true
		res.Reason = "no requests before the canary started"
		return res
	case !(curErrors >= 0) || !(refErrors >= 0) || curErrors > curRequests || refErrors > refRequests:
		res.NoData = true
		res.Reason = fmt.Sprintf("counts that are not errors of requests: %v of %v now, %v of %v before", curErrors, curRequests, refErrors, refRequests)
		return res
	}
	ref, cur := refErrors/refRequests, curErrors/curRequests
	res.Reference, res.Current = ref, cur
	n, k := math.Round(curRequests), math.Round(curErrors)
	alpha := m.Alpha
	if m.Direction == DirectionEither {
		alpha /= 2
	}
	var outside []string
	if m.Direction != DirectionDecrease {
		tol := math.Min(1, math.Max(ref*m.AllowedIncrease, ref+m.AllowedDelta))
		// P(X ≥ k) for X ~ Binomial(n, tol): how likely this many errors are at the
		// tolerated rate.
		p := 1.0
		if k > 0 {
			p = 1 - distuv.Binomial{N: n, P: tol}.CDF(k-1)
		}
		if p < alpha {
			outside = append(outside, fmt.Sprintf("higher than tolerated (%s): p=%s", formatValue(tol, "ratio"), formatP(p)))
		}
	}
	if m.Direction != DirectionIncrease {
		tol := math.Max(0, math.Min(ref*m.AllowedDecrease, ref-m.AllowedDelta))
		if p := (distuv.Binomial{N: n, P: tol}).CDF(k); p < alpha {
			outside = append(outside, fmt.Sprintf("lower than tolerated (%s): p=%s", formatValue(tol, "ratio"), formatP(p)))
		}
	}
	head := fmt.Sprintf("%s now (%s of %s requests) vs %s before the canary (%s of %s)", formatValue(cur, "ratio"), trim(k), trim(n),
		formatValue(ref, "ratio"), trim(math.Round(refErrors)), trim(math.Round(refRequests)))
	if len(outside) > 0 {
		res.Reason = head + ": " + strings.Join(outside, "; ")
		return res
	}
	res.Within = true
	res.Reason = head + ": within tolerance"
	return res
}

// Recovery judges current (a cohort's points after the rollback) against reference (the
// points before the canary started) with the metric's own tolerance, the one its canary
// was judged by:
//
//   - mannwhitney: Classify(reference, current) is a pass: no significant shift beyond
//     allowed_increase, allowed_decrease and allowed_delta;
//   - threshold: the median of current lies in [min, max] (the reference is not needed);
//   - ratio: the median of current over the median of reference lies in [min, max].
//
// It is pure: no clock, no I/O.
func Recovery(m MetricSpec, reference, current []float64) RecoveryResult {
	m = m.WithDefaults()
	if !RecoverySupported(m.Kind) {
		return RecoveryResult{NoData: true, Reason: fmt.Sprintf("%s: a %s metric cannot be watched for recovery", m.Name, m.Kind)}
	}
	ref, _ := cleanInto(nil, reference, m.NaNStrategy)
	cur, _ := cleanInto(nil, current, m.NaNStrategy)
	slices.Sort(ref)
	slices.Sort(cur)
	res := RecoveryResult{Reference: medianSorted(ref), Current: medianSorted(cur), NReference: len(ref), NCurrent: len(cur)}
	needRef := m.Kind != KindThreshold
	switch {
	case len(cur) < m.MinPoints:
		res.NoData = true
		res.Reason = fmt.Sprintf("%d points since the rollback, fewer than %d", len(cur), m.MinPoints)
		return res
	case needRef && len(ref) < m.MinPoints:
		res.NoData = true
		res.Reason = fmt.Sprintf("%d points before the canary started, fewer than %d", len(ref), m.MinPoints)
		return res
	}
	now, before := formatValue(res.Current, m.Unit), formatValue(res.Reference, m.Unit)
	switch m.Kind {
	case KindMannWhitney:
		r := Classify(m, ref, cur)
		mw := r.MannWhitney
		switch r.Classification {
		case ClassPass:
			res.Within = true
			res.Reason = fmt.Sprintf("%s now vs %s before the canary: within tolerance (shift %s, p=%s)", now, before,
				formatDelta(mw.Estimate, m.Unit), formatP(mw.PValue))
		case ClassHigh, ClassLow:
			way := "higher"
			if r.Classification == ClassLow {
				way = "lower"
			}
			res.Reason = fmt.Sprintf("%s now vs %s before the canary: %s than tolerated (shift %s, p=%s)", now, before, way,
				formatDelta(mw.Estimate, m.Unit), formatP(mw.PValue))
		default:
			res.NoData = true
			res.Reason = r.Reason
		}
	case KindThreshold:
		res.Within = inBounds(res.Current, m.Min, m.Max)
		res.Reason = fmt.Sprintf("%s now (median of %d points), bounds %s", now, len(cur), boundsText(m.Min, m.Max, m.Unit, false))
	case KindRatio:
		var ratio float64
		switch {
		case res.Reference != 0:
			ratio = res.Current / res.Reference
		case res.Current == 0:
			ratio = 1
		default:
			ratio = math.Inf(1)
		}
		res.Within = inBounds(ratio, m.Min, m.Max)
		rt := "×∞ (the reference is 0)"
		if !math.IsInf(ratio, 0) {
			rt = formatRatio(ratio)
		}
		res.Reason = fmt.Sprintf("%s now vs %s before the canary: %s, tolerated %s", now, before, rt, boundsText(m.Min, m.Max, "", true))
	}
	return res
}

func inBounds(v float64, lo, hi *float64) bool {
	return (lo == nil || v >= *lo) && (hi == nil || v <= *hi)
}

// boundsText renders [min, max] for a reason; ratio bounds as ×r.
func boundsText(lo, hi *float64, unit string, ratio bool) string {
	f := func(v float64) string {
		if ratio {
			return formatRatio(v)
		}
		return formatValue(v, unit)
	}
	switch {
	case lo != nil && hi != nil:
		return f(*lo) + ".." + f(*hi)
	case hi != nil:
		return "≤ " + f(*hi)
	case lo != nil:
		return "≥ " + f(*lo)
	}
	return "none"
}
