package judge

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

type goldenCase struct {
	Name               string    `json:"name"`
	Confidence         float64   `json:"confidence"`
	Method             Method    `json:"method"`
	U                  float64   `json:"u"`
	PValue             float64   `json:"p_value"`
	Estimate           float64   `json:"estimate"`
	CILow              float64   `json:"ci_low"`
	CIHigh             float64   `json:"ci_high"`
	AchievedConfidence float64   `json:"achieved_confidence"`
	Baseline           []float64 `json:"baseline"`
	Canary             []float64 `json:"canary"`
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/wilcox_golden.json")
	if err != nil {
		t.Fatalf("read golden file (regenerate with Rscript judge/testdata/golden.R): %v", err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("decode golden file: %v", err)
	}
	return cases
}

// relClose compares p-values: relative 1e-6, with an absolute floor for values that
// underflow towards 0 differently in R's pnorm and Go's erfc.
func relClose(got, want, rel float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= rel*math.Abs(want) || math.Abs(got-want) < 1e-300
}

// rootClose is R's uniroot stopping rule run to tol.root = 1e-12: the root lies within
// 2·eps·|x| + tol of the iterate R returns. scale, the largest |value| of the cohorts,
// adds the rounding of x − d: W(d) jumps where x_i − d rounds past y_j, which is within
// an ulp of the data (not of d) of the difference x_i − y_j that the selection returns.
func rootClose(got, want, scale float64) bool {
	return math.Abs(got-want) <= rootTol+4*epsilon*max(math.Abs(want), scale)
}

func maxAbs(vs ...[]float64) float64 {
	m := 0.0
	for _, v := range vs {
		for _, f := range v {
			m = max(m, math.Abs(f))
		}
	}
	return m
}

func TestMannWhitneyMatchesR(t *testing.T) {
	cases := loadGolden(t)
	if len(cases) < 85 {
		t.Fatalf("golden file has %d cases, want at least 85", len(cases))
	}
	for _, prefix := range []string{"ties-zero-inflated-", "small-scale-", "kayenta-mw-", "kayenta-classifier-"} {
		if !slices.ContainsFunc(cases, func(c goldenCase) bool { return strings.HasPrefix(c.Name, prefix) }) {
			t.Errorf("golden file has no %s* case", prefix)
		}
	}
	var s Scratch // one scratch across all cases also proves reuse is safe
	worst, worstName := 0.0, ""
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			got, err := s.MannWhitney(tc.Baseline, tc.Canary, tc.Confidence)
			if err != nil {
				t.Fatalf("MannWhitney: %v", err)
			}
			if got.Method != tc.Method {
				t.Errorf("method = %s, R used %s", got.Method, tc.Method)
			}
			if got.U != tc.U {
				t.Errorf("U = %v, R's W = %v", got.U, tc.U)
			}
			if !relClose(got.PValue, tc.PValue, 1e-6) {
				t.Errorf("p = %.17g, R = %.17g", got.PValue, tc.PValue)
			}
			if got.NBaseline != len(tc.Baseline) || got.NCanary != len(tc.Canary) {
				t.Errorf("sizes = %d/%d, want %d/%d", got.NBaseline, got.NCanary, len(tc.Baseline), len(tc.Canary))
			}
			if !relClose(got.Confidence, tc.AchievedConfidence, 1e-12) {
				t.Errorf("confidence = %v, R achieved %v", got.Confidence, tc.AchievedConfidence)
			}
			scale := maxAbs(tc.Baseline, tc.Canary)
			same := func(a, b float64) bool { return a == b }
			if tc.Method == MethodNormal {
				same = func(a, b float64) bool { return rootClose(a, b, scale) }
			}
			if !same(got.Estimate, tc.Estimate) {
				t.Errorf("estimate = %.17g, R = %.17g (diff %g)", got.Estimate, tc.Estimate, got.Estimate-tc.Estimate)
			}
			if !same(got.CILow, tc.CILow) || !same(got.CIHigh, tc.CIHigh) {
				t.Errorf("interval = [%.17g, %.17g], R = [%.17g, %.17g] (diff %g, %g)",
					got.CILow, got.CIHigh, tc.CILow, tc.CIHigh, got.CILow-tc.CILow, got.CIHigh-tc.CIHigh)
			}
			// R's own estimate may stop 1e-13 outside a collapsed interval; ours never.
			if !(got.CILow <= got.Estimate && got.Estimate <= got.CIHigh) {
				t.Errorf("estimate %.17g outside its interval [%.17g, %.17g]", got.Estimate, got.CILow, got.CIHigh)
			}
			for _, d := range []float64{got.Estimate - tc.Estimate, got.CILow - tc.CILow, got.CIHigh - tc.CIHigh} {
				if d := math.Abs(d) / max(1, scale); d > worst {
					worst, worstName = d, tc.Name
				}
			}
		})
	}
	t.Logf("%d cases; largest deviation from R, relative to max(1, largest |value|): %.3g (%s)", len(cases), worst, worstName)
}
