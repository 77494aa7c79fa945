package judge

import (
	"math"
	"slices"

	"github.com/canaryd/canaryd/internal/field"
)

// Kinds, Directions and NaNStrategies are the values a spec may take, in the order
// errors list them.
var (
	Kinds         = []Kind{KindMannWhitney, KindThreshold, KindRatio, KindCounts, KindHistogram}
	Directions    = []Direction{DirectionIncrease, DirectionDecrease, DirectionEither}
	NaNStrategies = []NaNStrategy{NaNRemove, NaNZero}
	EffectSizes   = []EffectMeasure{EffectInterval, EffectMeanRatio, EffectCLES}
)

// Window reports whether the kind bounds a value over a window (threshold, ratio): the
// kinds that take min, max and for.
func (k Kind) Window() bool { return k == KindThreshold || k == KindRatio }

// Sequential reports whether the kind accumulates evidence over the canary's life
// (counts, histogram): the kinds that take alpha and a horizon.
func (k Kind) Sequential() bool { return k == KindCounts || k == KindHistogram }

// Validate is the one place the judge's rules live: it returns every problem of a spec
// (after WithDefaults, or with every field set as config does) as field.Errors, each
// named by its key in a metric's `judge:` block (allowed_increase, for, …; the block as a
// whole for a rule about several keys), so config only prefixes the metric's path. It
// returns nil when the spec is valid.
//
// A window judge's min may equal its max: an "exactly" bound, for a value that has one
// right level (a replica count, a 0/1 gauge); every other value is outside it.
func (m MetricSpec) Validate() error {
	var es field.Errors
	if !slices.Contains(Kinds, m.Kind) {
		es.Add("type", "unknown judge %q, want one of %v", m.Kind, Kinds)
	}
	if !slices.Contains(Directions, m.Direction) {
		es.Add("direction", "unknown direction %q, want one of %v", m.Direction, Directions)
	}
	if !slices.Contains(NaNStrategies, m.NaNStrategy) {
		es.Add("nan_strategy", "unknown strategy %q, want one of %v", m.NaNStrategy, NaNStrategies)
	}
	if !(m.Confidence > 0 && m.Confidence < 1) {
		es.Add("confidence", "must be in (0, 1)")
	}
	if m.EffectSize != "" && !slices.Contains(EffectSizes, m.EffectSize) {
		es.Add("effect_size", "unknown measure %q, want one of %v", m.EffectSize, EffectSizes)
	}
	if m.EffectSize.Kayenta() {
		m.validateEffect(&es)
	} else {
		if !(m.AllowedIncrease >= 1) || math.IsInf(m.AllowedIncrease, 0) {
			es.Add("allowed_increase", "must be >= 1 (1.1 tolerates +10%%)")
		}
		if !(m.AllowedDecrease > 0 && m.AllowedDecrease <= 1) {
			es.Add("allowed_decrease", "must be in (0, 1] (0.9 tolerates -10%%)")
		}
		for _, k := range []struct {
			key string
			v   float64
		}{{"tolerance", m.Tolerance}, {"critical_increase", m.CriticalIncrease}, {"critical_decrease", m.CriticalDecrease}} {
			if k.v != 0 {
				es.Add(k.key, "only with effect_size mean_ratio or cles (Kayenta's measures)")
			}
		}
	}
	if !(m.AllowedDelta >= 0) || math.IsInf(m.AllowedDelta, 0) {
		es.Add("allowed_delta", "must be >= 0")
	}
	if !(m.OutlierFactor > 0) || math.IsInf(m.OutlierFactor, 0) {
		es.Add("outlier_factor", "must be > 0")
	}
	if m.MinPoints < 1 {
		es.Add("min_points", "must be >= 1")
	}
	if m.For < 0 {
		es.Add("for", "must be >= 0")
	}
	for _, b := range []struct {
		key string
		v   *float64
	}{{"min", m.Min}, {"max", m.Max}} {
		if b.v != nil && !isFinite(*b.v) {
			es.Add(b.key, "must be a finite number")
		}
	}
	m.validateKind(&es)
	return es.Err()
}

// validateEffect checks the keys of a Kayenta measure: its bounds are levels of the
// measure (a ratio of means > 0, or a share of pairs in [0, 1]), for mannwhitney only.
func (m MetricSpec) validateEffect(es *field.Errors) {
	if m.Kind != KindMannWhitney {
		es.Add("effect_size", "%s is for mannwhitney judges only", m.EffectSize)
	}
	if m.AllowedDelta != 0 {
		es.Add("allowed_delta", "not with effect_size %s (Kayenta's measures are relative)", m.EffectSize)
	}
	if !(m.Tolerance >= 0) || math.IsInf(m.Tolerance, 0) {
		es.Add("tolerance", "must be >= 0 (a fraction of the estimate)")
	}
	for _, k := range []struct {
		key string
		v   float64
	}{{"allowed_increase", m.AllowedIncrease}, {"allowed_decrease", m.AllowedDecrease},
		{"critical_increase", m.CriticalIncrease}, {"critical_decrease", m.CriticalDecrease}} {
		switch {
		case m.EffectSize == EffectCLES && !(k.v >= 0 && k.v <= 1):
			es.Add(k.key, "must be in [0, 1] (a share of pairs) with effect_size cles")
		case m.EffectSize == EffectMeanRatio && (!(k.v > 0) || math.IsInf(k.v, 0)):
			es.Add(k.key, "must be > 0 (a ratio of means) with effect_size mean_ratio")
		}
	}
}

// validateKind checks the keys that belong to some kinds only.
func (m MetricSpec) validateKind(es *field.Errors) {
	switch {
	case m.Kind.Window():
		m.validateWindow(es)
	case m.Kind.Sequential():
		if !(m.Alpha > 0 && m.Alpha <= 0.5) {
			es.Add("alpha", "must be in (0, 0.5]")
		}
		if m.Horizon < 1 || m.Horizon > MaxHorizon {
			es.Add("horizon", "%d must be in [1, %d] steps", m.Horizon, MaxHorizon)
		}
		if m.AllowedIncrease > 1000 || m.AllowedDecrease < 0.001 {
			es.Add("", "a %s judge tolerates ratios within [0.001, 1000] (allowed_increase, allowed_decrease)", m.Kind)
		}
	}
	if !m.Kind.Window() {
		for _, k := range []struct {
			key string
			set bool
		}{{"min", m.Min != nil}, {"max", m.Max != nil}, {"for", m.For != 0}} {
			if k.set {
				es.Add(k.key, "only for threshold and ratio judges")
			}
		}
	}
	if !m.Kind.Sequential() && m.Alpha != 0 {
		es.Add("alpha", "only for counts and histogram judges (mannwhitney uses confidence)")
	}
}

func (m MetricSpec) validateWindow(es *field.Errors) {
	if m.Min == nil && m.Max == nil {
		es.Add("", "a %s judge needs min, max or both", m.Kind)
	}
	if m.Min != nil && m.Max != nil && *m.Min > *m.Max {
		es.Add("min", "must be <= max (%v)", *m.Max)
	}
	if m.Kind == KindRatio {
		// A ratio of two non-negative series is never below 0: a bound at 0 or below
		// could never be broken.
		if m.Max != nil && !(*m.Max > 0) {
			es.Add("max", "must be > 0")
		}
		if m.Min != nil && !(*m.Min > 0) {
			es.Add("min", "must be > 0")
		}
	}
	if m.For > 0 && m.Step <= 0 {
		es.Add("step", "must be > 0 when for is set")
	}
}
