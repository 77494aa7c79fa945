package judge

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/stat"
)

// Defaults of MetricSpec's optional fields.
const (
	DefaultConfidence    = 0.95
	DefaultOutlierFactor = 3.0
	DefaultMinPointsMW   = 3
)

// WithDefaults returns m with every zero optional field replaced by its default.
func (m MetricSpec) WithDefaults() MetricSpec {
	if m.Kind == "" {
		m.Kind = KindMannWhitney
	}
	if m.Direction == "" {
		m.Direction = DirectionIncrease
	}
	if m.Confidence == 0 {
		m.Confidence = DefaultConfidence
	}
	if m.EffectSize == "" {
		m.EffectSize = EffectInterval
	}
	neutral := 1.0 // the measure's value when the cohorts are alike
	if m.EffectSize == EffectCLES {
		neutral = 0.5
	}
	if m.AllowedIncrease == 0 {
		m.AllowedIncrease = neutral
	}
	if m.AllowedDecrease == 0 {
		m.AllowedDecrease = neutral
	}
	// Tolerance and the critical bounds are the Kayenta measures' own: the interval
	// rule leaves them 0, so that Validate can refuse them there.
	if m.EffectSize.Kayenta() {
		if m.Tolerance == 0 {
			m.Tolerance = DefaultKayentaTolerance
		}
		if m.CriticalIncrease == 0 {
			m.CriticalIncrease = neutral
		}
		if m.CriticalDecrease == 0 {
			m.CriticalDecrease = neutral
		}
	}
	if m.NaNStrategy == "" {
		m.NaNStrategy = NaNRemove
	}
	if m.OutlierFactor == 0 {
		m.OutlierFactor = DefaultOutlierFactor
	}
	// Alpha and Horizon are the sequential judges' own: the other kinds leave them 0,
	// so that Validate can refuse them there.
	if m.Kind.Sequential() && m.Alpha == 0 {
		m.Alpha = DefaultAlpha
	}
	if m.Kind.Sequential() && m.Horizon == 0 {
		m.Horizon = DefaultHorizon
	}
	if m.MinPoints == 0 {
		m.MinPoints = 1
		if m.Kind == KindMannWhitney {
			m.MinPoints = DefaultMinPointsMW
		}
	}
	return m
}

// Classify judges one metric over the baseline's and the canary's points. For the ratio
// judge, baseline[i] and canary[i] must be the same instant. It never panics: a spec that
// is wrong gives ClassError with the reason.
func Classify(m MetricSpec, baseline, canary []float64) MetricResult {
	var s Scratch
	return s.Classify(m, baseline, canary)
}

// Classify is the allocation-light form of the package function, reusing s's buffers.
func (s *Scratch) Classify(m MetricSpec, baseline, canary []float64) MetricResult {
	m = m.WithDefaults()
	res := MetricResult{
		Name: m.Name, Group: m.Group, Groups: m.Groups, Kind: m.Kind,
		Critical: m.Critical, MustHaveData: m.MustHaveData, Muted: m.Muted,
	}
	if err := m.Validate(); err != nil {
		res.Classification = ClassError
		res.Reason = fmt.Sprintf("%s: invalid judge: %s", m.Name, strings.ReplaceAll(err.Error(), "\n", "; "))
		return res
	}
	switch m.Kind {
	case KindMannWhitney:
		s.classifyMW(m, baseline, canary, &res)
	case KindCounts, KindHistogram:
		res.Classification = ClassError
		res.Reason = fmt.Sprintf("%s: a %s judge needs per-step counts, not a series of values", m.Name, m.Kind)
	default:
		s.classifyWindow(m, baseline, canary, &res)
	}
	return res
}

// cleanInto copies the finite points of v into dst (or zeroes the others) and returns
// it with the number of missing points.
func cleanInto(dst, v []float64, strategy NaNStrategy) ([]float64, int) {
	dst = dst[:0]
	missing := 0
	for _, f := range v {
		if isFinite(f) {
			dst = append(dst, f)
			continue
		}
		missing++
		if strategy == NaNZero {
			dst = append(dst, 0)
		}
	}
	return dst, missing
}

// removeOutliers sorts v and keeps the points within [Q1 − k·IQR, Q3 + k·IQR].
func removeOutliers(v []float64, k float64) ([]float64, int) {
	if len(v) < 4 {
		return v, 0 // quartiles of three points say nothing about outliers
	}
	slices.Sort(v)
	q1 := stat.Quantile(0.25, stat.LinInterp, v, nil)
	q3 := stat.Quantile(0.75, stat.LinInterp, v, nil)
	lo, hi := q1-k*(q3-q1), q3+k*(q3-q1)
	kept := v[:0]
	for _, f := range v {
		if f >= lo && f <= hi {
			kept = append(kept, f)
		}
	}
	return kept, len(v) - len(kept)
}

// removeOutliersKayenta sorts v and keeps the points within Kayenta's fences (its
// IQRDetector with reduceSensitivity, as NetflixACAJudge uses it): [Q1 − k·IQR, Q3 +
// k·IQR] widened to the 1st and 99th percentiles, every quantile R's type 7.
func removeOutliersKayenta(v []float64, k float64) ([]float64, int) {
	if len(v) == 0 {
		return v, 0
	}
	slices.Sort(v)
	lo, hi := kayentaFences(v, k, true)
	kept := v[:0]
	for _, f := range v {
		if f >= lo && f <= hi {
			kept = append(kept, f)
		}
	}
	return kept, len(v) - len(kept)
}

// kayentaFences are the fences of Kayenta's IQRDetector over sorted v (not empty).
func kayentaFences(v []float64, k float64, reduceSensitivity bool) (lo, hi float64) {
	q1, q3 := quantile7(v, 0.25), quantile7(v, 0.75)
	lo, hi = q1-k*(q3-q1), q3+k*(q3-q1)
	if reduceSensitivity {
		lo, hi = min(lo, quantile7(v, 0.01)), max(hi, quantile7(v, 0.99))
	}
	return lo, hi
}

// quantile7 is R's type-7 quantile of sorted v (not empty): the linear interpolation
// between the order statistics at (n − 1)·p.
func quantile7(v []float64, p float64) float64 {
	h := float64(len(v)-1) * p
	i := int(math.Floor(h))
	if i+1 >= len(v) {
		return v[len(v)-1]
	}
	return v[i] + (h-float64(i))*(v[i+1]-v[i])
}

// medianSorted is the median of sorted v (0 for none).
func medianSorted(v []float64) float64 {
	n := len(v)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return v[n/2]
	}
	if m := (v[n/2-1] + v[n/2]) / 2; isFinite(m) {
		return m
	}
	return v[n/2-1]/2 + v[n/2]/2
}

func (s *Scratch) classifyMW(m MetricSpec, baseline, canary []float64, res *MetricResult) {
	b, bMissing := cleanInto(s.clean[0], baseline, m.NaNStrategy)
	c, cMissing := cleanInto(s.clean[1], canary, m.NaNStrategy)
	s.clean[0], s.clean[1] = b, c
	res.Baseline.Missing, res.Canary.Missing = bMissing, cMissing
	if m.RemoveOutliers {
		remove := removeOutliers
		if m.EffectSize.Kayenta() {
			remove = removeOutliersKayenta
		}
		b, res.Baseline.Outliers = remove(b, m.OutlierFactor)
		c, res.Canary.Outliers = remove(c, m.OutlierFactor)
	}
	res.Baseline.N, res.Canary.N = len(b), len(c)
	if len(b) < m.MinPoints || len(c) < m.MinPoints {
		if len(b) > 0 {
			res.Baseline.Median = medianSorted(sortedCopy(&s.y, b))
		}
		if len(c) > 0 {
			res.Canary.Median = medianSorted(sortedCopy(&s.x, c))
		}
		res.Classification = ClassNoData
		res.Reason = fmt.Sprintf("%s: no data: baseline has %d points, canary %d, %d needed in each%s",
			m.Name, len(b), len(c), m.MinPoints, missingNote(bMissing, cMissing))
		return
	}
	conf := m.JudgedConfidence()
	mw, err := s.MannWhitney(b, c, conf)
	if err != nil {
		res.Classification = ClassError
		res.Reason = fmt.Sprintf("%s: %v", m.Name, err)
		return
	}
	res.MannWhitney = mw
	// MannWhitney left the sorted cohorts in s.x (canary) and s.y (baseline).
	bm, cm := medianSorted(s.y), medianSorted(s.x)
	res.Baseline.Median, res.Canary.Median = bm, cm

	ratioDefined := bm != 0
	if ratioDefined {
		scale := math.Abs(bm)
		res.Relative = Relative{Estimate: mw.Estimate / scale, Low: mw.CILow / scale, High: mw.CIHigh / scale}
		if !isFinite(res.Relative.Estimate) || !isFinite(res.Relative.Low) || !isFinite(res.Relative.High) {
			res.Relative, ratioDefined = Relative{}, false
		}
	}
	if m.EffectSize.Kayenta() {
		s.classifyEffect(m, res, ratioDefined)
		return
	}
	// A change counts when its whole confidence interval lies beyond the tolerance: the
	// canary is confidently worse than tolerated, not just worse by its point estimate.
	// The scheduler judges a growing window every interval, so a judge that fails on the
	// estimate fails healthy canaries by chance at one of its many looks (canaryd eval:
	// 11% of A/A runs of the golden-signals preset); with a tolerance, the bound moves
	// away from it as the window grows and the looks stop adding false alarms. Without a
	// tolerance this is the plain test: the interval excludes 0.
	high := m.Direction != DirectionDecrease && mw.CILow > 0 && mw.CILow > m.AllowedDelta &&
		(!ratioDefined || 1+res.Relative.Low > m.AllowedIncrease)
	low := m.Direction != DirectionIncrease && mw.CIHigh < 0 && -mw.CIHigh > m.AllowedDelta &&
		(!ratioDefined || 1+res.Relative.High < m.AllowedDecrease)
	// A shift held at 0 by tied points (zero-inflated counts: most pairs are 0 − 0) says
	// nothing about a change in how often the canary is higher: the interval collapses to
	// [0, 0] although the test at 0 rejects. Without an absolute tolerance the shift rule
	// above is the plain test, and the rank test then stands in for it, by its effect
	// (see Scratch.superiority) against the tolerance read as odds: allowed_increase 1.5
	// tolerates the canary being higher in up to 1.5/2.5 = 60% of the pairs. With
	// allowed_delta > 0 a shift held at 0 is within the tolerance, as the shift rule says:
	// the rank test ignored it and failed 1.8% of healthy canaries of a tolerance-only
	// analysis (cmd/canaryd's chaos test; none without the rule). An interval with only
	// one end at 0 (values on a grid) keeps the shift rule: 0 is in it.
	var rank *rankEffect
	if !high && !low && m.AllowedDelta == 0 && mw.CILow == 0 && mw.CIHigh == 0 && mw.PValue < 1-conf {
		ps, lo, hi := s.superiority(mw.U, conf)
		r := rankEffect{ps: ps, lo: lo, hi: hi, conf: conf}
		switch {
		case m.Direction != DirectionDecrease && lo > m.AllowedIncrease/(1+m.AllowedIncrease):
			high, r.limit = true, m.AllowedIncrease/(1+m.AllowedIncrease)
			rank = &r
		case m.Direction != DirectionIncrease && hi < m.AllowedDecrease/(1+m.AllowedDecrease):
			low, r.limit = true, m.AllowedDecrease/(1+m.AllowedDecrease)
			rank = &r
		}
	}
	switch {
	case high:
		res.Classification = ClassHigh
	case low:
		res.Classification = ClassLow
	default:
		res.Classification = ClassPass
	}
	res.Reason = mwReason(m, res, ratioDefined, rank)
}

// share renders a probability as an unsigned percentage, 0.615 → "61.5%".
func share(f float64) string {
	return strconv.FormatFloat(100*min(max(f, 0), 1), 'f', 1, 64) + "%"
}

// rankEffect is the probability of superiority with its bounds, and the odds tolerance
// it was compared with, when the rank test classified a metric.
type rankEffect struct {
	ps, lo, hi, conf, limit float64
}

func sortedCopy(dst *[]float64, v []float64) []float64 {
	*dst = append((*dst)[:0], v...)
	slices.Sort(*dst)
	return *dst
}

func missingNote(b, c int) string {
	if b == 0 && c == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d baseline and %d canary points missing)", b, c)
}

func mwReason(m MetricSpec, res *MetricResult, ratioDefined bool, rank *rankEffect) string {
	text := mwSummary(m, res, ratioDefined)
	switch {
	case rank != nil:
		word, side := "higher", "above"
		if res.Classification == ClassLow {
			word, side = "lower", "below"
		}
		conf := percent(res.MannWhitney.Confidence)
		text += fmt.Sprintf("; %s than tolerated by the rank test: the shift is held at 0 by tied points, "+
			"but the canary is higher in %s of pairs (%s CI %s..%s), %s %s",
			word, share(rank.ps), conf, share(rank.lo), share(rank.hi), side, share(rank.limit))
	case res.Classification == ClassHigh:
		text += "; higher than tolerated" + tolerance(m, ratioDefined, true)
	case res.Classification == ClassLow:
		text += "; lower than tolerated" + tolerance(m, ratioDefined, false)
	}
	return text
}

// mwSummary is the first part of a mannwhitney reason: the cohorts, the shift with its
// interval and the p-value.
func mwSummary(m MetricSpec, res *MetricResult, ratioDefined bool) string {
	mw := res.MannWhitney
	conf := percent(mw.Confidence)
	var shift string
	if ratioDefined {
		shift = fmt.Sprintf("%s (%s CI %s..%s)", formatPercent(res.Relative.Estimate), conf,
			formatPercent(res.Relative.Low), formatPercent(res.Relative.High))
	} else {
		shift = fmt.Sprintf("shift %s (%s CI %s..%s)", formatDelta(mw.Estimate, m.Unit), conf,
			formatDelta(mw.CILow, m.Unit), formatDelta(mw.CIHigh, m.Unit))
	}
	text := fmt.Sprintf("canary %s %s vs %s baseline, %s, p=%s",
		m.Name, formatValue(res.Canary.Median, m.Unit), formatValue(res.Baseline.Median, m.Unit),
		shift, formatP(mw.PValue))
	if mw.Confidence != m.Confidence {
		text += fmt.Sprintf(" (confidence raised from %s for %d looks without a tolerance)", percent(m.Confidence), m.Looks)
	}
	return text
}

// percent renders a confidence level to at most two decimals: 0.95 → "95%",
// 0.975 → "97.5%", 0.99821 → "99.82%".
func percent(f float64) string {
	s := strconv.FormatFloat(100*f, 'f', 2, 64)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") + "%"
}

func tolerance(m MetricSpec, ratioDefined, up bool) string {
	switch {
	case ratioDefined && up && m.AllowedIncrease > 1:
		return fmt.Sprintf(" (%s)", formatPercent(m.AllowedIncrease-1))
	case ratioDefined && !up && m.AllowedDecrease < 1:
		return fmt.Sprintf(" (%s)", formatPercent(m.AllowedDecrease-1))
	case m.AllowedDelta > 0:
		return fmt.Sprintf(" (±%s)", formatDifference(m.AllowedDelta, m.Unit))
	}
	return ""
}

// mean is the arithmetic mean of v (v is not empty).
func mean(v []float64) float64 {
	sum := 0.0
	for _, f := range v {
		sum += f
	}
	if m := sum / float64(len(v)); isFinite(m) {
		return m
	}
	// A sum that overflowed: the mean of the halves.
	sum = 0
	for _, f := range v {
		sum += f / 2
	}
	return 2 * sum / float64(len(v))
}

// classifyEffect classifies a metric as Kayenta's MannWhitneyClassifier does: the change
// is significant when the shift's interval clears Tolerance × |estimate| on one side, and
// it counts when the effect (the mean ratio or the CLES) reaches the allowed bound on that
// side; an undefined mean ratio (a mean of 0) leaves significance alone to decide. A
// critical metric's high (low) is critical only when the effect also reaches
// CriticalIncrease (CriticalDecrease). One rule is canaryd's, kept under Kayenta's
// measures: a shift held at [0, 0] by tied points whose rank test rejects is significant
// on the side the probability of superiority lies (Kayenta's own interval is not exactly
// [0, 0] there, and its suite expects such a canary to be high).
func (s *Scratch) classifyEffect(m MetricSpec, res *MetricResult, ratioDefined bool) {
	mw := res.MannWhitney
	mb, mc := mean(s.y), mean(s.x)
	eff := Effect{Measure: m.EffectSize}
	if mb != 0 && mc != 0 && isFinite(mc/mb) {
		eff.MeanRatio = mc / mb
	}
	switch m.EffectSize {
	case EffectCLES:
		eff.Value = mw.U / (float64(len(s.x)) * float64(len(s.y)))
	default:
		eff.Value, eff.Undefined = eff.MeanRatio, eff.MeanRatio == 0
	}
	res.Effect = eff
	bound := m.Tolerance * math.Abs(mw.Estimate)
	sigHigh, sigLow := mw.CILow > bound, mw.CIHigh < -bound
	var rank *rankEffect
	if !sigHigh && !sigLow && mw.CILow == 0 && mw.CIHigh == 0 && mw.PValue < 1-mw.Confidence {
		ps, lo, hi := s.superiority(mw.U, mw.Confidence)
		r := rankEffect{ps: ps, lo: lo, hi: hi, conf: mw.Confidence, limit: 0.5}
		sigHigh, sigLow = lo > 0.5, hi < 0.5
		rank = &r
	}
	high := m.Direction != DirectionDecrease && sigHigh && (eff.Undefined || eff.Value >= m.AllowedIncrease)
	low := m.Direction != DirectionIncrease && sigLow && (eff.Undefined || eff.Value <= m.AllowedDecrease)
	switch {
	case high:
		res.Classification = ClassHigh
		res.Critical = m.Critical && (eff.Undefined || eff.Value >= m.CriticalIncrease)
	case low:
		res.Classification = ClassLow
		res.Critical = m.Critical && (eff.Undefined || eff.Value <= m.CriticalDecrease)
	default:
		res.Classification = ClassPass
		rank = nil
	}
	text := mwSummary(m, res, ratioDefined) + "; " + effectReason(m, eff)
	switch {
	case rank != nil:
		word := "higher"
		if low {
			word = "lower"
		}
		text += fmt.Sprintf("; %s by the rank test: the shift is held at 0 by tied points, but the canary is higher in %s of pairs (%s CI %s..%s)",
			word, share(rank.ps), percent(rank.conf), share(rank.lo), share(rank.hi))
	case high:
		text += "; higher than tolerated"
	case low:
		text += "; lower than tolerated"
	}
	if m.Critical && (high || low) && !res.Critical {
		text += " (not critical: the effect is within critical_" + map[bool]string{true: "increase", false: "decrease"}[high] + ")"
	}
	res.Reason = text
}

// effectReason renders a Kayenta effect and the bounds it was held to.
func effectReason(m MetricSpec, e Effect) string {
	if e.Undefined {
		return "mean ratio undefined (a mean of 0): the interval alone decides"
	}
	if m.EffectSize == EffectCLES {
		return fmt.Sprintf("CLES %s (allowed %s..%s)", share(e.Value), share(m.AllowedDecrease), share(m.AllowedIncrease))
	}
	return fmt.Sprintf("mean ratio ×%s (allowed ×%s..×%s)", sig3(e.Value), sig3(m.AllowedDecrease), sig3(m.AllowedIncrease))
}

// sig3 renders a ratio with three significant digits.
func sig3(f float64) string { return strconv.FormatFloat(f, 'g', 3, 64) }
