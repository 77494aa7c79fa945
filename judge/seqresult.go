package judge

// SequentialResult reports a sequential judge (counts, histogram): the evidence, the
// estimate with its confidence sequence, and what the steps were.
type SequentialResult struct {
	Steps       int `json:"steps"`       // steps added, missing and invalid included
	Informative int `json:"informative"` // steps with events (errors, or requests above a boundary)
	Missing     int `json:"missing,omitempty"`
	Rounded     int `json:"rounded,omitempty"`
	Invalid     int `json:"invalid,omitempty"`

	// Side is the direction whose evidence is reported: the tested side nearest to (or
	// past) its threshold.
	Side Direction `json:"side"`
	// EValue is the largest value the side's e-process reached (the judge fails when it
	// reaches Threshold = 1/alpha, or 2/alpha per side for direction either), EValueNow
	// its current value, PeakStep the step (1-based) of the largest.
	EValue    float64 `json:"e_value"`
	EValueNow float64 `json:"e_value_now"`
	Threshold float64 `json:"threshold"`
	PeakStep  int     `json:"peak_step,omitempty"`

	// Estimate is the canary/baseline ratio (error rates for counts; the rates of
	// requests slower than Boundary for a histogram) and [Low, High] its confidence
	// sequence at level Confidence (High is open when HighUnbounded).
	Estimate      float64 `json:"estimate"`
	Low           float64 `json:"low"`
	High          float64 `json:"high"`
	HighUnbounded bool    `json:"high_unbounded,omitempty"`
	Confidence    float64 `json:"confidence"`

	// BaselineRate and CanaryRate: the cohorts' error rates (counts) or shares of
	// requests slower than Boundary (histogram), pooled over the steps used.
	BaselineRate float64 `json:"baseline_rate"`
	CanaryRate   float64 `json:"canary_rate"`
	// Dispersion is the estimated extra-binomial dispersion φ that tempers each step.
	Dispersion float64 `json:"dispersion"`

	// Boundary is the histogram bucket boundary (le) whose evidence is reported.
	Boundary float64 `json:"boundary,omitempty"`
	// Quantiles are the histogram's quantile confidence sequences, in bucket terms.
	Quantiles []QuantileInterval `json:"quantiles,omitempty"`
}

// QuantileInterval is a confidence sequence for one quantile of each cohort's latency.
type QuantileInterval struct {
	Q        float64       `json:"q"` // 0.5, 0.99
	Baseline BucketBracket `json:"baseline"`
	Canary   BucketBracket `json:"canary"`
}

// BucketBracket bounds a quantile by bucket boundaries: it lies in (Low, High], High
// open when HighUnbounded (above the largest finite boundary). Estimate interpolates
// within the bucket as Prometheus' histogram_quantile does.
type BucketBracket struct {
	Estimate      float64 `json:"estimate"`
	Low           float64 `json:"low"`
	High          float64 `json:"high"`
	HighUnbounded bool    `json:"high_unbounded,omitempty"`
}
