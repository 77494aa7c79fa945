package judge

import (
	"math/rand/v2"
	"testing"
)

// TestToleranceNeedsTheWholeInterval: with a tolerance, a rise counts only when the
// whole confidence interval of the shift lies beyond it, not just the estimate.
func TestToleranceNeedsTheWholeInterval(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	base := lognormal(r, 41, 0.100, 0.20)
	noisy := lognormal(r, 41, 0.114, 0.20)   // +14%, wide interval
	steady := lognormal(r, 401, 0.114, 0.02) // +14%, narrow interval
	steadyBase := lognormal(r, 401, 0.100, 0.02)
	tests := []struct {
		name      string
		spec      MetricSpec
		base, can []float64
		want      Classification
		// check the premise: where the estimate and the interval's low end stand.
		estAbove, lowAbove bool
	}{
		{name: "estimate beyond +10% but the interval reaches below: pass",
			spec: MetricSpec{Name: "p50", AllowedIncrease: 1.1}, base: base, can: noisy, want: ClassPass, estAbove: true, lowAbove: false},
		{name: "the whole interval beyond +10%: high",
			spec: MetricSpec{Name: "p50", AllowedIncrease: 1.1}, base: steadyBase, can: steady, want: ClassHigh, estAbove: true, lowAbove: true},
		{name: "no tolerance: the interval above 0 is enough",
			spec: MetricSpec{Name: "p50"}, base: steadyBase, can: steady, want: ClassHigh, estAbove: true, lowAbove: true},
		{name: "absolute tolerance: the interval's low end must pass allowed_delta",
			spec: MetricSpec{Name: "p50", AllowedDelta: 0.0136}, base: steadyBase, can: steady, want: ClassPass, estAbove: true, lowAbove: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.spec, tc.base, tc.can)
			if (got.Relative.Estimate > 0.1) != tc.estAbove || (got.Relative.Low > 0.1) != tc.lowAbove {
				t.Fatalf("premise: relative estimate %+.3f, low %+.3f", got.Relative.Estimate, got.Relative.Low)
			}
			if d := tc.spec.AllowedDelta; d > 0 && !(got.MannWhitney.Estimate > d && got.MannWhitney.CILow < d) {
				t.Fatalf("premise: shift %v and its low end %v should straddle allowed_delta %v", got.MannWhitney.Estimate, got.MannWhitney.CILow, d)
			}
			if got.Classification != tc.want {
				t.Fatalf("classification %s, want %s (%s; shift %v, CI %v..%v)", got.Classification, tc.want, got.Reason,
					got.MannWhitney.Estimate, got.MannWhitney.CILow, got.MannWhitney.CIHigh)
			}
		})
	}
}
