package judge

import (
	"bufio"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// kayentaCase is one file of testdata/kayenta: the input vectors of a test of Kayenta's
// own suites (each file names its source) with the confidence, direction and label that
// test uses.
type kayentaCase struct {
	baseline, canary []float64
	confidence       float64
	direction        Direction
	kayenta          Classification // Kayenta's expected label; empty for its Mann-Whitney suite
}

func loadKayenta(t testing.TB, name string) kayentaCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "kayenta", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kc := kayentaCase{direction: DirectionEither}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(sc.Text(), "# "))
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "baseline", "canary":
			v := make([]float64, len(fields)-1)
			for i, s := range fields[1:] {
				if v[i], err = strconv.ParseFloat(s, 64); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if fields[0] == "baseline" {
				kc.baseline = v
			} else {
				kc.canary = v
			}
		case "confidence":
			if kc.confidence, err = strconv.ParseFloat(fields[1], 64); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		case "direction":
			kc.direction = Direction(fields[1])
		case "kayenta":
			kc.kayenta = Classification(fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return kc
}

// TestClassifyKayenta judges the vectors of Kayenta's own classifier and Mann-Whitney
// tests. Kayenta's knobs map onto canaryd's: its effect-size thresholds (lo, hi) are
// allowed_decrease and allowed_increase (a level the interval's end must pass); its
// tolerance (a fraction of the estimate) has no counterpart and the plain test stands
// in for it. Where canaryd's answer differs from Kayenta's, the case says why.
func TestClassifyKayenta(t *testing.T) {
	tests := []struct {
		file      string
		spec      MetricSpec // Name, Direction and Confidence come from the file unless set
		swap      bool       // judge the file's canary as the baseline and the other way round
		want      Classification
		reasonHas string
	}{
		{file: "classifier-pass-metric", want: ClassPass},
		{file: "classifier-high-metric", want: ClassHigh},
		{file: "classifier-low-metric", want: ClassLow},
		{file: "classifier-directional-test-increase", want: ClassPass},
		{file: "classifier-directional-test-decrease", want: ClassPass},
		{file: "classifier-directional-test-high-metric", want: ClassHigh},
		{file: "classifier-directional-test-low-metric", want: ClassLow},
		// 33% vs 10% of the points non-zero, p = 3e-9: the shift's interval is [0, 0]
		// (most pairs are 0 − 0); the rank test classifies it (it passed before).
		{file: "classifier-high-metric-large-input", want: ClassHigh, reasonHas: "higher than tolerated by the rank test"},
		// The same vectors with Kayenta's mean-ratio threshold 5: the odds tolerance
		// 5/6 = 83% of pairs is above the 61.5% measured.
		{file: "classifier-mean-ratio-effect-size-pass-large-input", spec: MetricSpec{AllowedIncrease: 5}, want: ClassPass},
		{file: "classifier-mean-ratio-effect-size-high", spec: MetricSpec{AllowedIncrease: 1.2, AllowedDecrease: 0.8}, want: ClassHigh},
		{file: "classifier-mean-ratio-effect-size-low", spec: MetricSpec{AllowedIncrease: 1.2, AllowedDecrease: 0.8}, want: ClassLow},
		{file: "classifier-mean-ratio-effect-size-pass", spec: MetricSpec{AllowedDecrease: 0.5}, want: ClassPass},
		{file: "classifier-cles-effect-size-pass", want: ClassPass},
		{file: "classifier-cles-effect-size-high", want: ClassHigh},
		{file: "classifier-cles-effect-size-low", want: ClassLow},
		{file: "classifier-critical-effect-size-critical-high", spec: MetricSpec{Critical: true}, want: ClassHigh},
		{file: "classifier-critical-effect-size-critical-low", spec: MetricSpec{Critical: true}, want: ClassLow},
		{file: "classifier-critical-effect-size-critical-high-default-thresholds", spec: MetricSpec{Critical: true}, want: ClassHigh},
		{file: "classifier-critical-effect-size-high", spec: MetricSpec{AllowedIncrease: 5}, want: ClassHigh},
		{file: "classifier-critical-effect-size-pass", spec: MetricSpec{AllowedIncrease: 13}, want: ClassPass},
		// Three and two points: canaryd's min_points default (3) would say nodata.
		{file: "classifier-tied-observations", spec: MetricSpec{MinPoints: 2}, want: ClassPass},
		{file: "classifier-identical-populations", want: ClassPass},
		{file: "classifier-leading-zero-identical-population", want: ClassPass},
		{file: "classifier-majority-tied-observations", want: ClassPass},
		{file: "classifier-tied-ranks", want: ClassHigh},
		{file: "classifier-tied-ranks-with-zeros", want: ClassHigh},
		{file: "classifier-zero-mean-critical-metric", spec: MetricSpec{Critical: true}, want: ClassHigh},
		// The Mann-Whitney suite's zero-inflated vectors (the same 33% vs 10%).
		{file: "mw-intermediate-values-variables", spec: MetricSpec{Direction: DirectionIncrease}, want: ClassHigh,
			reasonHas: "the canary is higher in 61.5% of pairs (95% CI 57."},
		{file: "mw-intermediate-values-variables", spec: MetricSpec{Direction: DirectionDecrease}, want: ClassPass},
		// golden-signals' error-rate tolerance, allowed_increase 1.5: up to 60% of pairs
		// tolerated; the lower bound, 57.7%, is not above it.
		{file: "mw-intermediate-values-variables", spec: MetricSpec{Direction: DirectionIncrease, AllowedIncrease: 1.5}, want: ClassPass},
		// The same vectors swapped (the canary non-zero in 10% of points, the baseline in
		// 33%): low by the rank test.
		{file: "mw-intermediate-values-variables", swap: true, spec: MetricSpec{Direction: DirectionDecrease}, want: ClassLow,
			reasonHas: "lower than tolerated by the rank test: the shift is held at 0 by tied points, but the canary is higher in 38.5% of pairs"},
		// An absolute tolerance holds a shift held at 0: it is within ±allowed_delta.
		{file: "mw-intermediate-values-variables", spec: MetricSpec{Direction: DirectionIncrease, AllowedDelta: 0.5}, want: ClassPass},
		// Half-step latencies, the canary lower in 59% of pairs (p = 0.041): the
		// interval [-0.5, 0] has only one end at 0, which it contains (values on a grid
		// of 0.5): the shift rule decides, not the rank test.
		{file: "mw-confidence-interval-and-estimate-tie-out-with-r-version", spec: MetricSpec{Direction: DirectionIncrease}, want: ClassPass},
		{file: "mw-confidence-interval-and-estimate-tie-out-with-r-version", spec: MetricSpec{Direction: DirectionDecrease}, want: ClassPass},
		{file: "mw-confidence-interval-and-estimate-problem-case", want: ClassPass},
		{file: "mw-wilcoxon-diff-function", want: ClassPass},
		{file: "mw-confidence-interval-and-estimate", want: ClassHigh},
	}
	var s Scratch
	for _, tc := range tests {
		name := tc.file + "/" + string(tc.spec.Direction)
		if tc.swap {
			name += "/swapped"
		}
		t.Run(name, func(t *testing.T) {
			kc := loadKayenta(t, tc.file)
			spec := tc.spec
			spec.Name = "m"
			if spec.Direction == "" {
				spec.Direction = kc.direction
			}
			if spec.Confidence == 0 {
				spec.Confidence = kc.confidence
			}
			if tc.swap {
				kc.baseline, kc.canary = kc.canary, kc.baseline
			}
			res := s.Classify(spec, kc.baseline, kc.canary)
			if res.Classification != tc.want {
				t.Errorf("classification = %s, want %s (Kayenta: %q): %s", res.Classification, tc.want, kc.kayenta, res.Reason)
			}
			if !strings.Contains(res.Reason, tc.reasonHas) {
				t.Errorf("reason %q does not contain %q", res.Reason, tc.reasonHas)
			}
			mw := res.MannWhitney
			if res.Classification != ClassNoData && !(mw.CILow <= mw.Estimate && mw.Estimate <= mw.CIHigh) {
				t.Errorf("estimate %v outside [%v, %v]", mw.Estimate, mw.CILow, mw.CIHigh)
			}
		})
	}
}

// The rank-test rule for a shift held at 0 keeps the test's false alarm rate on healthy
// zero-inflated counts: one-sided, at most (1 − confidence)/2 of A/A pairs are high.
func TestClassifyZeroInflatedAA(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 5))
	draw := func(n int, p float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			if r.Float64() < p {
				v[i] = float64(1 + r.IntN(3))
			}
		}
		return v
	}
	const runs = 2000
	var s Scratch
	high, byRank := 0, 0
	for range runs {
		res := s.Classify(MetricSpec{Name: "errors"}, draw(60, 0.15), draw(60, 0.15))
		if res.Classification == ClassHigh {
			high++
			if strings.Contains(res.Reason, "rank test") {
				byRank++
			}
		}
	}
	// 2.5% expected; 3.5% is 2.9 standard errors above it.
	if rate := float64(high) / runs; rate > 0.035 {
		t.Errorf("A/A high rate %.2f%% (%d by the rank test), want <= 3.5%%", 100*rate, byRank)
	}
	if byRank == 0 {
		t.Errorf("no A/A run reached the rank-test rule: the test does not exercise it")
	}
	t.Logf("A/A high: %d of %d, %d by the rank test", high, runs, byRank)
}
