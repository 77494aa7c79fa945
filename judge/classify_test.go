package judge

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func ptr(v float64) *float64 { return &v }

// lognormal draws n latencies (n odd) whose median is exactly med, with spread sigma.
func lognormal(r *rand.Rand, n int, med, sigma float64) []float64 {
	z := make([]float64, n)
	for i := range z {
		z[i] = r.NormFloat64()
	}
	mid := medianSorted(sortedCopy(new([]float64), z))
	v := make([]float64, n)
	for i := range v {
		v[i] = med * math.Exp(sigma*(z[i]-mid))
	}
	return v
}

func TestClassifyMannWhitney(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	base := lognormal(r, 121, 0.101, 0.05)
	slow := lognormal(r, 121, 0.162, 0.05)
	same := lognormal(r, 121, 0.101, 0.05)
	fast := lognormal(r, 121, 0.080, 0.05)
	slightlySlow := lognormal(r, 121, 0.106, 0.05) // +5%
	withGaps := append(append([]float64{}, slow...), math.NaN(), math.Inf(1), math.NaN())
	zeroErrors := make([]float64, 60)
	someErrors := make([]float64, 60)
	for i := range someErrors {
		someErrors[i] = 0.02 + 0.002*r.NormFloat64()
	}

	tests := []struct {
		name       string
		spec       MetricSpec
		base, can  []float64
		want       Classification
		reasonHas  []string
		wantFailed bool
	}{
		{name: "latency regression is high",
			spec: MetricSpec{Name: "p50 latency", Unit: "seconds"}, base: base, can: slow, want: ClassHigh, wantFailed: true,
			reasonHas: []string{"canary p50 latency 162 ms vs 101 ms baseline", "+6", "(95% CI +", "p=", "higher than tolerated"}},
		{name: "same distribution passes",
			spec: MetricSpec{Name: "p50"}, base: base, can: same, want: ClassPass},
		{name: "faster is fine when only increase hurts",
			spec: MetricSpec{Name: "p50"}, base: base, can: fast, want: ClassPass},
		{name: "faster is low when either direction hurts",
			spec: MetricSpec{Name: "p50", Direction: DirectionEither}, base: base, can: fast, want: ClassLow, wantFailed: true},
		{name: "slower is fine when only decrease hurts",
			spec: MetricSpec{Name: "throughput", Direction: DirectionDecrease}, base: base, can: slow, want: ClassPass},
		{name: "5% rise tolerated by allowed_increase 1.1",
			spec: MetricSpec{Name: "p50", AllowedIncrease: 1.1}, base: base, can: slightlySlow, want: ClassPass},
		{name: "5% rise fails without tolerance",
			spec: MetricSpec{Name: "p50"}, base: base, can: slightlySlow, want: ClassHigh, wantFailed: true},
		{name: "rise within allowed_delta passes",
			spec: MetricSpec{Name: "p50", AllowedDelta: 0.1}, base: base, can: slow, want: ClassPass},
		{name: "NaN removed by default",
			spec: MetricSpec{Name: "p50"}, base: base, can: withGaps, want: ClassHigh, wantFailed: true},
		{name: "errors from a zero baseline are high",
			spec: MetricSpec{Name: "error rate", Unit: "ratio"}, base: zeroErrors, can: someErrors, want: ClassHigh, wantFailed: true,
			reasonHas: []string{"shift +", " pp (95% CI +", " pp), p=", "vs 0% baseline"}},
		{name: "an absolute tolerance of a ratio is in points",
			spec: MetricSpec{Name: "error rate", Unit: "ratio", AllowedDelta: 0.001}, base: zeroErrors, can: someErrors, want: ClassHigh, wantFailed: true,
			reasonHas: []string{"higher than tolerated (±0.1 pp)"}},
		{name: "too few points is nodata",
			spec: MetricSpec{Name: "p50", MinPoints: 200}, base: base, can: slow, want: ClassNoData,
			reasonHas: []string{"no data: baseline has 121 points, canary 121, 200 needed"}},
		{name: "nodata fails when data is a must",
			spec: MetricSpec{Name: "p50", MustHaveData: true}, base: nil, can: slow, want: ClassNoData, wantFailed: true},
		{name: "all NaN is nodata",
			spec: MetricSpec{Name: "p50"}, base: []float64{math.NaN(), math.NaN(), math.NaN()}, can: slow, want: ClassNoData,
			reasonHas: []string{"3 baseline and 0 canary points missing"}},
		{name: "NaN as zero drags the canary down",
			spec: MetricSpec{Name: "rps", NaNStrategy: NaNZero, Direction: DirectionDecrease},
			base: []float64{10, 11, 10, 12, 11, 10, 11, 12}, can: []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN(), 10, 11, math.NaN(), math.NaN()},
			want: ClassLow, wantFailed: true},
		{name: "invalid spec is an error naming the field",
			spec: MetricSpec{Name: "p50", Confidence: 2}, base: base, can: slow, want: ClassError,
			reasonHas: []string{"confidence: must be in (0, 1)"}},
		{name: "unknown kind",
			spec: MetricSpec{Name: "p50", Kind: "ttest"}, base: base, can: slow, want: ClassError,
			reasonHas: []string{`type: unknown judge "ttest", want one of [mannwhitney threshold ratio counts histogram]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.spec, tc.base, tc.can)
			if got.Classification != tc.want {
				t.Fatalf("classification = %s, want %s (reason: %s)", got.Classification, tc.want, got.Reason)
			}
			if got.Failed() != tc.wantFailed {
				t.Errorf("Failed() = %v, want %v", got.Failed(), tc.wantFailed)
			}
			for _, s := range tc.reasonHas {
				if !strings.Contains(got.Reason, s) {
					t.Errorf("reason %q lacks %q", got.Reason, s)
				}
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("result does not encode as JSON: %v", err)
			}
		})
	}
}

func TestClassifyOutliers(t *testing.T) {
	base := []float64{10, 11, 10, 12, 11, 10, 11, 12, 10, 11}
	can := []float64{10, 11, 10, 12, 11, 10, 11, 12, 10, 11, 500, 900}
	plain := Classify(MetricSpec{Name: "x"}, base, can)
	cleaned := Classify(MetricSpec{Name: "x", RemoveOutliers: true}, base, can)
	if cleaned.Canary.Outliers != 2 || cleaned.Canary.N != 10 {
		t.Errorf("outliers removed = %d, kept %d; want 2 and 10", cleaned.Canary.Outliers, cleaned.Canary.N)
	}
	if cleaned.Classification != ClassPass {
		t.Errorf("with outliers removed: %s (%s)", cleaned.Classification, cleaned.Reason)
	}
	if plain.Canary.N != 12 {
		t.Errorf("without removal N = %d, want 12", plain.Canary.N)
	}
}

func TestClassifyWindows(t *testing.T) {
	step := 30 * time.Second
	// error rate per step: above 2% from index 3 to 12 (10 points, 4m30s apart).
	errs := []float64{0.01, 0.01, 0.01, 0.03, 0.04, 0.05, 0.03, 0.03, 0.04, 0.03, 0.05, 0.06, 0.03, 0.01}
	gap := append([]float64{}, errs...)
	gap[7] = math.NaN() // a missing point splits the run into 4 and 5 points
	baseP99 := []float64{0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2}
	canP99 := []float64{0.2, 0.25, 0.35, 0.35, 0.4, 0.36, 0.29, 0.2, 0.2, 0.2}
	zeroBase := []float64{0, 0, 0, 0}
	someCan := []float64{0, 1, 1, 0}

	tests := []struct {
		name      string
		spec      MetricSpec
		base, can []float64
		want      Classification
		longest   int
		seconds   float64
		worst     float64
		reasonHas string
	}{
		{name: "above for 4m30s breaks for 4m",
			spec: MetricSpec{Name: "error-rate", Kind: KindThreshold, Max: ptr(0.02), For: 4 * time.Minute, Step: step, Unit: "ratio"},
			can:  errs, want: ClassHigh, longest: 10, seconds: 270, worst: 0.06,
			reasonHas: "error-rate above 2% for 4m30s (limit for 4m0s), up to 6%"},
		{name: "above for 4m30s holds for 5m",
			spec: MetricSpec{Name: "error-rate", Kind: KindThreshold, Max: ptr(0.02), For: 5 * time.Minute, Step: step},
			can:  errs, want: ClassPass, longest: 10, seconds: 270, worst: 0.06},
		{name: "a gap splits the run",
			spec: MetricSpec{Name: "error-rate", Kind: KindThreshold, Max: ptr(0.02), For: 2*time.Minute + 30*time.Second, Step: step},
			can:  gap, want: ClassPass, longest: 5, seconds: 120, worst: 0.06},
		{name: "NaN as zero keeps the run broken too",
			spec: MetricSpec{Name: "error-rate", Kind: KindThreshold, Max: ptr(0.02), For: 2*time.Minute + 30*time.Second, Step: step, NaNStrategy: NaNZero},
			can:  gap, want: ClassPass, longest: 5, seconds: 120, worst: 0.06},
		{name: "for 0 fails on one point",
			spec: MetricSpec{Name: "cpu", Kind: KindThreshold, Min: ptr(0.05), Step: step},
			can:  []float64{0.5, 0.5, 0.01, 0.5}, want: ClassLow, longest: 1, seconds: 0, worst: 0.01},
		{name: "p99 above 1.5x baseline for 1m",
			spec: MetricSpec{Name: "p99", Kind: KindRatio, Max: ptr(1.5), For: time.Minute, Step: step},
			base: baseP99, can: canP99, want: ClassHigh, longest: 4, seconds: 90, worst: 2,
			reasonHas: "p99 canary/baseline above 1.5× for 1m30s (limit for 1m0s), up to 2×"},
		{name: "p99 above 1.5x baseline not for 2m",
			spec: MetricSpec{Name: "p99", Kind: KindRatio, Max: ptr(1.5), For: 2 * time.Minute, Step: step},
			base: baseP99, can: canP99, want: ClassPass, longest: 4, seconds: 90, worst: 2},
		{name: "errors over a zero baseline are an infinite ratio",
			spec: MetricSpec{Name: "errors", Kind: KindRatio, Max: ptr(2), For: 30 * time.Second, Step: step},
			base: zeroBase, can: someCan, want: ClassHigh, longest: 2, seconds: 30, worst: 0},
		{name: "ratio needs aligned cohorts",
			spec: MetricSpec{Name: "p99", Kind: KindRatio, Max: ptr(1.5), Step: step},
			base: baseP99[:3], can: canP99, want: ClassError},
		{name: "no bounds is an error",
			spec: MetricSpec{Name: "p99", Kind: KindThreshold, Step: step},
			can:  canP99, want: ClassError},
		{name: "no points is nodata",
			spec: MetricSpec{Name: "p99", Kind: KindThreshold, Max: ptr(1), Step: step},
			can:  []float64{math.NaN()}, want: ClassNoData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.spec, tc.base, tc.can)
			if got.Classification != tc.want {
				t.Fatalf("classification = %s, want %s (%s)", got.Classification, tc.want, got.Reason)
			}
			if tc.want == ClassError || tc.want == ClassNoData {
				return
			}
			w := got.Window
			if w.LongestRun != tc.longest || w.LongestSeconds != tc.seconds || math.Abs(w.Worst-tc.worst) > 1e-12 {
				t.Errorf("window = %+v, want longest %d (%vs), worst %v", w, tc.longest, tc.seconds, tc.worst)
			}
			if tc.reasonHas != "" && !strings.Contains(got.Reason, tc.reasonHas) {
				t.Errorf("reason %q lacks %q", got.Reason, tc.reasonHas)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("result does not encode as JSON: %v", err)
			}
		})
	}
}

func TestScore(t *testing.T) {
	res := func(name, group string, c Classification, critical, must bool) MetricResult {
		return MetricResult{Name: name, Group: group, Classification: c, Critical: critical, MustHaveData: must}
	}
	tests := []struct {
		name      string
		results   []MetricResult
		groups    map[string]float64
		th        Thresholds
		score     float64
		verdict   Verdict
		reasonHas string
		unjudged  []string // CriticalUnjudged
	}{
		{name: "all pass", groups: map[string]float64{"errors": 60, "latency": 40},
			results: []MetricResult{res("e", "errors", ClassPass, true, false), res("p99", "latency", ClassPass, false, false)},
			score:   100, verdict: VerdictPass},
		{name: "weighted groups", groups: map[string]float64{"errors": 60, "latency": 40},
			results: []MetricResult{res("e", "errors", ClassPass, false, false), res("p50", "latency", ClassPass, false, false), res("p99", "latency", ClassHigh, false, false)},
			score:   80, verdict: VerdictMarginal, reasonHas: "score 80.0 below pass 95"},
		{name: "critical failure fails whatever the score", groups: map[string]float64{"errors": 60, "latency": 40},
			results: []MetricResult{res("e", "errors", ClassHigh, true, false), res("p99", "latency", ClassPass, false, false)},
			score:   40, verdict: VerdictFail, reasonHas: "critical metric failed: e"},
		{name: "nodata left out", groups: nil,
			results: []MetricResult{res("a", "g", ClassPass, false, false), res("b", "g", ClassNoData, false, false)},
			score:   100, verdict: VerdictPass},
		{name: "nodata that must have data fails", groups: nil,
			results: []MetricResult{res("a", "g", ClassPass, false, false), res("b", "g", ClassNoData, false, true)},
			score:   50, verdict: VerdictFail},
		{name: "critical nodata that must have data fails the canary", groups: nil,
			results: []MetricResult{res("a", "g", ClassPass, false, false), res("b", "h", ClassNoData, true, true)},
			score:   50, verdict: VerdictFail, reasonHas: "critical metric failed: b"},
		{name: "errors never pass silently",
			results: []MetricResult{res("a", "g", ClassError, false, false), res("b", "g", ClassNoData, false, false)},
			score:   0, verdict: VerdictNoData, reasonHas: "no metric could be scored (1 with no data, 1 in error)"},
		{name: "unnamed group weighs the mean", groups: map[string]float64{"a": 10, "b": 30},
			results: []MetricResult{res("1", "a", ClassPass, false, false), res("2", "b", ClassPass, false, false), res("3", "c", ClassHigh, false, false)},
			score:   100 * 40.0 / 60.0, verdict: VerdictFail},
		{name: "custom thresholds", th: Thresholds{Pass: 50, Marginal: 25},
			results: []MetricResult{res("1", "a", ClassPass, false, false), res("2", "a", ClassLow, false, false)},
			score:   50, verdict: VerdictPass},

		// A critical metric that cannot be judged never lets the verdict pass (issue 13).
		{name: "critical nodata is unjudged, never a pass", groups: map[string]float64{"errors": 60, "latency": 40},
			results: []MetricResult{res("error-rate", "errors", ClassNoData, true, false), res("p50", "latency", ClassPass, true, false)},
			score:   100, verdict: VerdictUnjudged, reasonHas: "critical metric could not be judged: error-rate (nodata)", unjudged: []string{"error-rate"}},
		{name: "critical error is unjudged, never a pass", groups: map[string]float64{"errors": 60, "latency": 40},
			results: []MetricResult{res("error-rate", "errors", ClassError, true, false), res("p50", "latency", ClassPass, false, false)},
			score:   100, verdict: VerdictUnjudged, reasonHas: "critical metric could not be judged: error-rate (error)", unjudged: []string{"error-rate"}},
		{name: "unjudged critical as fail", th: Thresholds{Unjudged: VerdictFail},
			results: []MetricResult{res("e", "g", ClassNoData, true, false), res("f", "g", ClassError, true, false), res("p", "g", ClassPass, false, false)},
			score:   100, verdict: VerdictFail, reasonHas: "critical metric could not be judged: e (nodata), f (error)", unjudged: []string{"e", "f"}},
		{name: "a critical failure outranks an unjudged one",
			results: []MetricResult{res("e", "g", ClassNoData, true, false), res("f", "g", ClassHigh, true, false)},
			score:   0, verdict: VerdictFail, reasonHas: "critical metric failed: f", unjudged: []string{"e"}},
		{name: "nothing scorable with a critical metric stays nodata",
			results: []MetricResult{res("e", "g", ClassNoData, true, false), res("p", "g", ClassNoData, false, false)},
			score:   0, verdict: VerdictNoData, reasonHas: "no metric could be scored", unjudged: []string{"e"}},
		{name: "nothing scorable with a critical metric, unjudged as fail", th: Thresholds{Unjudged: VerdictFail},
			results: []MetricResult{res("e", "g", ClassNoData, true, false), res("p", "g", ClassNoData, false, false)},
			score:   0, verdict: VerdictFail, reasonHas: "critical metric could not be judged: e (nodata)", unjudged: []string{"e"}},
		{name: "critical nodata that must have data is a failure, not unjudged",
			results: []MetricResult{res("e", "g", ClassNoData, true, true), res("p", "g", ClassPass, false, false)},
			score:   50, verdict: VerdictFail, reasonHas: "critical metric failed: e"},
		{name: "a failing score outranks an unjudged critical metric",
			results: []MetricResult{res("e", "g", ClassError, true, false), res("p", "g", ClassHigh, false, false)},
			score:   0, verdict: VerdictFail, reasonHas: "score 0.0 below marginal 75; critical metric could not be judged: e (error)", unjudged: []string{"e"}},
		{name: "unjudged critical keeps a marginal score from marginal",
			results: []MetricResult{res("e", "g", ClassNoData, true, false), res("a", "g", ClassPass, false, false), res("b", "g", ClassPass, false, false),
				res("c", "g", ClassPass, false, false), res("d", "g", ClassHigh, false, false)},
			score: 75, verdict: VerdictUnjudged, unjudged: []string{"e"}},
		{name: "non-critical error or nodata still passes",
			results: []MetricResult{res("e", "g", ClassError, false, false), res("n", "g", ClassNoData, false, false), res("p", "g", ClassPass, true, false)},
			score:   100, verdict: VerdictPass},

		// Kayenta's rules.
		{name: "kayenta: critical failure scores 0", th: Thresholds{Rules: RulesKayenta}, groups: map[string]float64{"errors": 60, "latency": 40},
			results: []MetricResult{res("e", "errors", ClassHigh, true, false), res("p99", "latency", ClassPass, false, false)},
			score:   0, verdict: VerdictFail, reasonHas: "critical metric failed: e"},
		{name: "kayenta: critical nodata is a failure scoring 0", th: Thresholds{Rules: RulesKayenta},
			results: []MetricResult{res("e", "errors", ClassNoData, true, false), res("p99", "latency", ClassPass, false, false)},
			score:   0, verdict: VerdictFail, reasonHas: "critical metric could not be judged: e (nodata)", unjudged: []string{"e"}},
		{name: "kayenta: critical error is a failure scoring 0", th: Thresholds{Rules: RulesKayenta},
			results: []MetricResult{res("e", "errors", ClassError, true, false), res("p99", "latency", ClassPass, false, false)},
			score:   0, verdict: VerdictFail, reasonHas: "critical metric could not be judged: e (error)", unjudged: []string{"e"}},
		{name: "kayenta: unjudged as error keeps the 0", th: Thresholds{Rules: RulesKayenta, Unjudged: VerdictUnjudged},
			results: []MetricResult{res("e", "errors", ClassNoData, true, false), res("p99", "latency", ClassPass, false, false)},
			score:   0, verdict: VerdictUnjudged, unjudged: []string{"e"}},
		{name: "kayenta: half the metrics nodata scores 0", th: Thresholds{Rules: RulesKayenta},
			results: []MetricResult{res("a", "g", ClassPass, false, false), res("b", "g", ClassNoData, false, false)},
			score:   0, verdict: VerdictFail, reasonHas: "1 of 2 metrics had no data"},
		{name: "kayenta: under half nodata scores the rest", th: Thresholds{Rules: RulesKayenta},
			results: []MetricResult{res("a", "g", ClassPass, false, false), res("b", "g", ClassPass, false, false), res("c", "g", ClassNoData, false, false)},
			score:   100, verdict: VerdictPass},
		{name: "kayenta: must_have_data nodata is a failed metric, not nodata", th: Thresholds{Rules: RulesKayenta, Pass: 40, Marginal: 20},
			results: []MetricResult{res("a", "g", ClassPass, false, false), res("b", "g", ClassNoData, false, true)},
			score:   50, verdict: VerdictPass},
		{name: "kayenta: score rounded to two decimals", th: Thresholds{Rules: RulesKayenta},
			results: []MetricResult{res("a", "g", ClassPass, false, false), res("b", "g", ClassPass, false, false), res("c", "g", ClassHigh, false, false)},
			score:   66.67, verdict: VerdictFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Score(tc.results, tc.groups, tc.th)
			if math.Abs(got.Score-tc.score) > 1e-9 || got.Verdict != tc.verdict {
				t.Fatalf("score %v %s, want %v %s (%s)", got.Score, got.Verdict, tc.score, tc.verdict, got.Reason)
			}
			if tc.reasonHas != "" && !strings.Contains(got.Reason, tc.reasonHas) {
				t.Errorf("reason %q lacks %q", got.Reason, tc.reasonHas)
			}
			if !slices.Equal(got.CriticalUnjudged, tc.unjudged) {
				t.Errorf("critical_unjudged %q, want %q", got.CriticalUnjudged, tc.unjudged)
			}
		})
	}
}
