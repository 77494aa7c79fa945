package judge

import (
	"math"
	"time"
)

// Method says how a Mann-Whitney p-value and interval were computed, following R's rule.
type Method string

const (
	// MethodExact uses the exact null distribution of U (both samples < 50 points, no ties).
	MethodExact Method = "exact"
	// MethodNormal uses the normal approximation with continuity and tie correction.
	MethodNormal Method = "normal"
)

// MannWhitneyResult is what R's wilcox.test(canary, baseline, conf.int=TRUE) reports.
type MannWhitneyResult struct {
	// U is R's W: the canary's rank sum minus n(n+1)/2 (n canary points).
	U      float64 `json:"u"`
	PValue float64 `json:"p_value"`
	// Estimate is the Hodges-Lehmann location shift, canary − baseline: the median of
	// the pairwise differences (exact branch) or R's root of the uncorrected W(d) (normal
	// branch). Always CILow <= Estimate <= CIHigh: where R's root stops just outside a
	// collapsed interval (within its tolerance), it is the median of the differences.
	Estimate float64 `json:"estimate"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	// Confidence is the level the interval achieves: the requested one, or lower when the
	// exact distribution of small samples cannot reach it (R warns and does the same).
	Confidence float64 `json:"confidence"`
	Method     Method  `json:"method"`
	NBaseline  int     `json:"n_baseline"`
	NCanary    int     `json:"n_canary"`
}

// Kind is the judge applied to one metric.
type Kind string

const (
	// KindMannWhitney compares the cohorts' distributions (rank test, shift, interval).
	KindMannWhitney Kind = "mannwhitney"
	// KindThreshold fails when the canary's value stays outside [min, max] for `for`.
	KindThreshold Kind = "threshold"
	// KindRatio fails when canary/baseline at each step stays outside [min, max] for `for`.
	KindRatio Kind = "ratio"
)

// Direction says which change of a metric hurts users.
type Direction string

const (
	DirectionIncrease Direction = "increase" // only a rise is a failure (latency, errors)
	DirectionDecrease Direction = "decrease" // only a fall is a failure (success rate, throughput)
	DirectionEither   Direction = "either"   // any significant change is a failure
)

// NaNStrategy says what a missing point (NaN or ±Inf) becomes before judging.
type NaNStrategy string

const (
	NaNRemove NaNStrategy = "remove" // drop the point (the default)
	NaNZero   NaNStrategy = "zero"   // count it as 0, e.g. a rate that is absent when nothing happened
)

// EffectMeasure says how a mannwhitney judge measures the size of a change against its
// tolerance.
type EffectMeasure string

const (
	// EffectInterval (the default): the whole confidence interval of the shift, as a
	// level of the baseline's median, must lie beyond allowed_increase/allowed_decrease.
	EffectInterval EffectMeasure = "interval"
	// EffectMeanRatio is Kayenta's default measure: the change is significant when the
	// interval clears Tolerance × |estimate|, and it counts when the ratio of the means
	// (canary/baseline) reaches AllowedIncrease (or falls to AllowedDecrease). A mean of
	// 0 leaves the ratio undefined and the significance alone decides, as in Kayenta.
	EffectMeanRatio EffectMeasure = "mean_ratio"
	// EffectCLES is Kayenta's other measure: the common-language effect size, the share
	// of (canary, baseline) pairs in which the canary is higher, ties counting half
	// (U/(n·m)), against AllowedIncrease and AllowedDecrease in [0, 1] (default 0.5).
	EffectCLES EffectMeasure = "cles"
)

// Kayenta reports whether the measure is one of Kayenta's (mean_ratio, cles).
func (e EffectMeasure) Kayenta() bool { return e == EffectMeanRatio || e == EffectCLES }

// DefaultKayentaTolerance is the fraction of the estimate the interval must clear under
// a Kayenta measure: NetflixACAJudge's fixed 0.25.
const DefaultKayentaTolerance = 0.25

// MetricSpec is the judge's view of one configured metric. The zero values of the
// optional fields are replaced by the defaults documented on each field.
//
// A mannwhitney metric is high when the whole interval of the shift lies above the
// tolerance (0, AllowedDelta and AllowedIncrease as a level of the baseline median), low
// likewise below. One rule covers a shift held at 0 by tied points (zero-inflated
// counts, where most pairs are 0 − 0 and the interval collapses to [0, 0] whatever the
// change): when both ends of the interval are exactly 0, AllowedDelta is 0 and the test
// rejects at 0 (p < 1 − Confidence), the rank test decides instead of the shift. Its
// effect is the probability of superiority U/(n·m), the share of (canary, baseline)
// pairs in which the canary is higher, ties counting half, with a Confidence interval
// from the p-value's normal approximation: high when that interval lies above
// AllowedIncrease/(1+AllowedIncrease) (the tolerance read as odds: 1.5 tolerates the
// canary being higher in up to 60% of pairs; the default 1 gives 50%, the plain test),
// low when it lies below AllowedDecrease/(1+AllowedDecrease). A positive AllowedDelta
// tolerates a shift held at 0 (it is within ±AllowedDelta, as the shift rule says), and an
// interval with one end at 0 (values on a grid) contains 0: the shift rule decides both.
type MetricSpec struct {
	Name  string
	Group string
	// Groups lists every group of a metric that counts in several (Kayenta's groups),
	// Group being the first; empty when it has one.
	Groups []string
	Kind   Kind
	// Unit formats values in reasons: "seconds" (shown as ms or s), "ratio" (shown as a
	// percentage), "percent", "bytes", or any other suffix shown as is.
	Unit string

	// Direction defaults to DirectionIncrease.
	Direction Direction
	// Confidence of the Mann-Whitney interval; default 0.95.
	Confidence float64
	// AllowedIncrease is the canary/baseline level tolerated upward before a significant
	// rise counts (1.1 tolerates +10%); default 1, any significant rise counts.
	AllowedIncrease float64
	// AllowedDecrease is the level tolerated downward (0.9 tolerates -10%); default 1.
	AllowedDecrease float64
	// AllowedDelta is an absolute shift tolerated in either direction, for metrics whose
	// baseline sits near zero (an error rate going from 0 to 0.0001).
	AllowedDelta float64

	// EffectSize is how a mannwhitney judge measures a change (default EffectInterval);
	// under a Kayenta measure AllowedIncrease and AllowedDecrease bound that measure.
	EffectSize EffectMeasure
	// Tolerance (Kayenta measures only) is the fraction of |estimate| the interval must
	// clear; default DefaultKayentaTolerance.
	Tolerance float64
	// CriticalIncrease and CriticalDecrease (Kayenta measures only) are Kayenta's
	// criticalIncrease/criticalDecrease: a critical metric that is high (low) fails the
	// canary only when its effect reaches CriticalIncrease (falls to CriticalDecrease);
	// below that it is an ordinary high (low). Default: the measure's neutral value, 1
	// for mean_ratio and 0.5 for cles.
	CriticalIncrease float64
	CriticalDecrease float64
	// Muted metrics are judged and reported but left out of the score (Kayenta's muted).
	Muted bool

	// Critical: a failure of this metric fails the whole canary whatever the score.
	Critical bool
	// MustHaveData: no data counts as a failure instead of being left out of the score.
	MustHaveData bool
	// NaNStrategy defaults to NaNRemove.
	NaNStrategy NaNStrategy
	// RemoveOutliers drops points outside [Q1 - k·IQR, Q3 + k·IQR] of each cohort, with k
	// = OutlierFactor (default 3).
	RemoveOutliers bool
	OutlierFactor  float64
	// MinPoints is the fewest points each cohort needs after cleaning; fewer is nodata.
	// Default 3 for mannwhitney, 1 for the windows.
	MinPoints int

	// Min and Max bound the value (threshold) or the canary/baseline ratio (ratio); nil
	// is unbounded on that side.
	Min *float64
	Max *float64
	// For is how long the bound must be broken before the metric fails, as a Prometheus
	// alert's `for`: the first and last of a run of consecutive points outside are at
	// least For apart. 0 fails on one point.
	For time.Duration
	// Step is the spacing of the points, needed to turn runs of points into durations.
	Step time.Duration

	// Alpha bounds the false-alarm probability of the sequential judges (counts,
	// histogram) over the whole canary, however often it is looked at; default 0.01.
	Alpha float64
	// Horizon is the number of steps over which the sequential judges spread their
	// change-point weight: the canary's lifetime divided by its step; default 120.
	Horizon int
	// Looks is how many intervals re-test a mannwhitney metric's growing window (the
	// scheduler sets it per canary); default 1. Without a tolerance on a side, the rules
	// above are the plain test at each look, and 28 looks at a 5% test fail about a
	// fifth of healthy canaries. So a metric with no tolerance on a side it tests is
	// judged at confidence 1 − (1 − Confidence)/Looks (Bonferroni over the looks): at
	// most 1 − Confidence of healthy canaries fail, however many looks. With a tolerance
	// the bound moves away from it as the window grows, and Confidence is kept.
	Looks int
}

// JudgedConfidence is the confidence a mannwhitney metric is judged at over m.Looks
// looks: Confidence, or 1 − (1 − Confidence)/Looks when a side it tests has no
// tolerance (see Looks).
func (m MetricSpec) JudgedConfidence() float64 {
	if m.Looks <= 1 || m.AllowedDelta > 0 {
		return m.Confidence
	}
	// A Kayenta measure's bounds are levels of its own neutral value (1, or 0.5 for cles).
	neutral := 1.0
	if m.EffectSize == EffectCLES {
		neutral = 0.5
	}
	upUntolerated := m.Direction != DirectionDecrease && m.AllowedIncrease <= neutral
	downUntolerated := m.Direction != DirectionIncrease && m.AllowedDecrease >= neutral
	if !upUntolerated && !downUntolerated {
		return m.Confidence
	}
	return 1 - (1-m.Confidence)/float64(m.Looks)
}

// Classification is one metric's outcome in one interval.
type Classification string

const (
	ClassPass   Classification = "pass"
	ClassHigh   Classification = "high"
	ClassLow    Classification = "low"
	ClassNoData Classification = "nodata"
	ClassError  Classification = "error"
)

// CohortSummary describes one cohort's points as the judge used them.
type CohortSummary struct {
	N        int     `json:"n"`                  // points judged
	Missing  int     `json:"missing,omitempty"`  // NaN or ±Inf points removed or zeroed
	Outliers int     `json:"outliers,omitempty"` // points removed as outliers
	Median   float64 `json:"median"`             // 0 when N is 0
}

// Relative is a shift expressed as a fraction of the baseline's median (0.6 = +60%).
// It is left zero when the baseline median is 0.
type Relative struct {
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
}

// WindowResult reports a threshold or ratio judge.
type WindowResult struct {
	Outside        int     `json:"outside"`         // points outside the bounds
	LongestRun     int     `json:"longest_run"`     // most consecutive points outside
	LongestSeconds float64 `json:"longest_seconds"` // that run's span, first to last point
	Worst          float64 `json:"worst"`           // the finite value (or ratio) furthest outside
}

// MetricResult is one metric's classification with the figures behind it. Every number
// is finite, so a result always encodes as JSON.
type MetricResult struct {
	Name           string         `json:"name"`
	Group          string         `json:"group,omitempty"`
	Groups         []string       `json:"groups,omitempty"` // every group, when more than one
	Kind           Kind           `json:"kind"`
	Classification Classification `json:"classification"`
	Critical       bool           `json:"critical,omitempty"`
	MustHaveData   bool           `json:"must_have_data,omitempty"`
	Muted          bool           `json:"muted,omitempty"` // left out of the score
	// Reason is a sentence a human can act on at 3 a.m.
	Reason      string            `json:"reason"`
	Baseline    CohortSummary     `json:"baseline"`
	Canary      CohortSummary     `json:"canary"`
	MannWhitney MannWhitneyResult `json:"mann_whitney,omitzero"`
	Relative    Relative          `json:"relative,omitzero"`
	Window      WindowResult      `json:"window,omitzero"`
	Sequential  SequentialResult  `json:"sequential,omitzero"`
	// Effect is the Kayenta effect size, under a Kayenta measure.
	Effect Effect `json:"effect,omitzero"`
}

// Effect is a change measured as Kayenta measures it.
type Effect struct {
	Measure EffectMeasure `json:"measure"`
	// Value is the measure: the mean ratio or the CLES; 0 when Undefined.
	Value float64 `json:"value"`
	// MeanRatio is canary mean / baseline mean (Kayenta's reported "ratio"), whatever the
	// measure; 0 when undefined (a mean of 0).
	MeanRatio float64 `json:"mean_ratio,omitempty"`
	// Undefined: the measure could not be computed (a mean of 0), so it did not count.
	Undefined bool `json:"undefined,omitempty"`
}

// InGroups returns the groups the result counts in: Groups, or Group alone.
func (r MetricResult) InGroups() []string {
	if len(r.Groups) > 0 {
		return r.Groups
	}
	return []string{r.Group}
}

// Failed reports whether the result counts against the canary: high or low, or nodata
// on a metric that must have data.
func (r MetricResult) Failed() bool {
	switch r.Classification {
	case ClassHigh, ClassLow:
		return true
	case ClassNoData:
		return r.MustHaveData
	}
	return false
}

// Unjudged reports whether the metric could not be judged: in error, or with no data on a
// metric that need not have data (with must_have_data, no data is a failure instead).
func (r MetricResult) Unjudged() bool {
	return r.Classification == ClassError || (r.Classification == ClassNoData && !r.MustHaveData)
}

// Verdict is a canary's outcome.
type Verdict string

const (
	VerdictPass     Verdict = "pass"
	VerdictMarginal Verdict = "marginal"
	VerdictFail     Verdict = "fail"
	// VerdictNoData: no metric could be scored (all nodata or error). Never a pass.
	VerdictNoData Verdict = "nodata"
	// VerdictUnjudged: a critical metric could not be judged (nodata or error) and none
	// failed. Never a pass: the one metric that decides may be the one that is broken.
	VerdictUnjudged Verdict = "unjudged"
)

// ScoreRules names how metric results roll up into a score.
type ScoreRules string

const (
	// RulesCanaryd (the default): a failed critical metric fails the verdict, the score
	// stays the weighted share of passing metrics.
	RulesCanaryd ScoreRules = "canaryd"
	// RulesKayenta are Kayenta's, for migrated configs: a critical metric that is not a
	// pass (high, low, nodata or error) makes the score 0, and so does nodata on half the
	// metrics or more; the score is rounded to two decimals.
	RulesKayenta ScoreRules = "kayenta"
)

// Thresholds turn a score into a verdict: >= Pass passes, >= Marginal is marginal, below
// fails; Rules and Unjudged say how the score and the verdict are reached.
type Thresholds struct {
	Pass     float64
	Marginal float64
	// Rules default to RulesCanaryd.
	Rules ScoreRules
	// Unjudged is the verdict when a critical metric could not be judged and none failed:
	// VerdictUnjudged or VerdictFail. The default is VerdictUnjudged under RulesCanaryd
	// and VerdictFail under RulesKayenta (Kayenta counts a critical nodata as a failure).
	Unjudged Verdict
}

// GroupScore is one group's share of the score.
type GroupScore struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"` // normalised over the groups that had data
	Score  float64 `json:"score"`  // 0..100, passed / scored metrics
	Passed int     `json:"passed"`
	Scored int     `json:"scored"`
}

// ScoreResult is a canary's score over one interval's metric results.
type ScoreResult struct {
	Score   float64      `json:"score"` // 0..100
	Verdict Verdict      `json:"verdict"`
	Groups  []GroupScore `json:"groups"`
	// CriticalFailures names the critical metrics that failed; any one fails the canary.
	CriticalFailures []string `json:"critical_failures,omitempty"`
	// CriticalUnjudged names the critical metrics that could not be judged (nodata without
	// must_have_data, or error); any one keeps the verdict from being a pass.
	CriticalUnjudged []string `json:"critical_unjudged,omitempty"`
	Errors           int      `json:"errors,omitempty"` // metrics classified error
	Reason           string   `json:"reason"`
}

// KayentaRatio is the "ratio" Kayenta reports for a metric (its resultMetadata): the mean
// ratio, canary/baseline, when it is defined; 1 where Kayenta's classifier stops before
// comparing (no data, cohorts alike); NaN for a change whose ratio is undefined (a mean
// of 0), as Kayenta reports it.
func (r MetricResult) KayentaRatio() float64 {
	switch {
	case r.Effect.MeanRatio != 0:
		return r.Effect.MeanRatio
	case r.Classification == ClassHigh || r.Classification == ClassLow:
		return math.NaN()
	}
	return 1
}
