package judge

import (
	"math"
	"strings"
	"testing"
)

func TestRecovery(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	healthy := []float64{0.010, 0.011, 0.009, 0.010, 0.012, 0.008, 0.010, 0.011, 0.009, 0.010, 0.011, 0.010}
	bad := []float64{0.10, 0.11, 0.09, 0.10, 0.12, 0.10}
	back := []float64{0.010, 0.009, 0.011, 0.010, 0.012, 0.010}
	mw := MetricSpec{Name: "error-rate", Kind: KindMannWhitney, Direction: DirectionIncrease, AllowedDelta: 0.005, Unit: "ratio"}
	cases := []struct {
		name      string
		spec      MetricSpec
		ref, cur  []float64
		within    bool
		nodata    bool
		reference float64
		current   float64
		reason    string
	}{
		{name: "mannwhitney back", spec: mw, ref: healthy, cur: back, within: true, reference: 0.010, current: 0.010, reason: "within tolerance"},
		{name: "mannwhitney still high", spec: mw, ref: healthy, cur: bad, reference: 0.010, current: 0.10, reason: "higher than tolerated"},
		{name: "mannwhitney too few points now", spec: mw, ref: healthy, cur: []float64{0.1, math.NaN()}, nodata: true, reference: 0.010, current: 0.1, reason: "1 points since the rollback, fewer than 3"},
		{name: "mannwhitney no reference", spec: mw, ref: nil, cur: back, nodata: true, current: 0.010, reason: "0 points before the canary started"},
		{name: "threshold inside", spec: MetricSpec{Name: "p99", Kind: KindThreshold, Max: f(0.5), Unit: "seconds"}, cur: []float64{0.3, 0.4, 0.9}, within: true, current: 0.4, reason: "400 ms now (median of 3 points), bounds ≤ 500 ms"},
		{name: "threshold outside", spec: MetricSpec{Name: "p99", Kind: KindThreshold, Max: f(0.5), Unit: "seconds"}, cur: []float64{0.6, 0.7, 0.2}, current: 0.6, reason: "600 ms now"},
		{name: "ratio within", spec: MetricSpec{Name: "p99", Kind: KindRatio, Max: f(1.5)}, ref: []float64{1, 1, 1}, cur: []float64{1.2, 1.4, 1.3}, within: true, reference: 1, current: 1.3, reason: "×1.3, tolerated ≤ ×1.5"},
		{name: "ratio outside", spec: MetricSpec{Name: "p99", Kind: KindRatio, Max: f(1.5)}, ref: []float64{1, 1, 1}, cur: []float64{1.6, 1.7, 1.8}, reference: 1, current: 1.7, reason: "×1.7"},
		{name: "ratio on a zero reference", spec: MetricSpec{Name: "p99", Kind: KindRatio, Max: f(1.5)}, ref: []float64{0, 0}, cur: []float64{0.1}, reference: 0, current: 0.1, reason: "×∞ (the reference is 0)"},
		{name: "histogram unsupported", spec: MetricSpec{Name: "latency", Kind: KindHistogram}, ref: healthy, cur: back, nodata: true, reason: "cannot be watched for recovery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Recovery(tc.spec, tc.ref, tc.cur)
			if r.Within != tc.within || r.NoData != tc.nodata {
				t.Fatalf("within %v nodata %v, want %v %v (%s)", r.Within, r.NoData, tc.within, tc.nodata, r.Reason)
			}
			if math.Abs(r.Reference-tc.reference) > 1e-9 || math.Abs(r.Current-tc.current) > 1e-9 {
				t.Errorf("reference %v current %v, want %v %v", r.Reference, r.Current, tc.reference, tc.current)
			}
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", r.Reason, tc.reason)
			}
		})
	}
}

func TestRecoveryCounts(t *testing.T) {
	spec := MetricSpec{Name: "errors", Kind: KindCounts, Direction: DirectionIncrease}
	cases := []struct {
		name                   string
		spec                   MetricSpec
		refE, refN, curE, curN float64
		within, nodata         bool
		reason                 string
	}{
		{name: "back at the reference rate", spec: spec, refE: 100, refN: 10000, curE: 11, curN: 1000, within: true, reason: "1.1% now (11 of 1000 requests) vs 1% before the canary (100 of 10000): within tolerance"},
		{name: "still ×10", spec: spec, refE: 100, refN: 10000, curE: 100, curN: 1000, reason: "higher than tolerated (1%): p="},
		{name: "no errors now", spec: spec, refE: 100, refN: 10000, curE: 0, curN: 1000, within: true},
		{name: "allowed_delta tolerates a small rise from zero", spec: MetricSpec{Name: "errors", Kind: KindCounts, AllowedDelta: 0.01}, refE: 0, refN: 10000, curE: 5, curN: 1000, within: true},
		{name: "a drop with direction decrease", spec: MetricSpec{Name: "ok", Kind: KindCounts, Direction: DirectionDecrease}, refE: 9900, refN: 10000, curE: 500, curN: 1000, reason: "lower than tolerated (99%)"},
		{name: "no requests since", spec: spec, refE: 100, refN: 10000, curE: 0, curN: 0, nodata: true, reason: "no requests since the rollback"},
		{name: "no requests before", spec: spec, refE: 0, refN: 0, curE: 1, curN: 10, nodata: true, reason: "no requests before the canary started"},
		{name: "more errors than requests", spec: spec, refE: 1, refN: 10, curE: 20, curN: 10, nodata: true, reason: "counts that are not errors of requests"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := RecoveryCounts(tc.spec, tc.refE, tc.refN, tc.curE, tc.curN)
			if r.Within != tc.within || r.NoData != tc.nodata {
				t.Fatalf("within %v nodata %v, want %v %v (%s)", r.Within, r.NoData, tc.within, tc.nodata, r.Reason)
			}
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", r.Reason, tc.reason)
			}
		})
	}
}
