package judge

import (
	"encoding/json"
	"math"
	"os"
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

// rootClose is R's uniroot stopping rule: the root lies within 2·eps·|x| + tol of the
// iterate R returns.
func rootClose(got, want float64) bool {
	return math.Abs(got-want) <= rootTol+4*epsilon*math.Abs(want)
}

func TestMannWhitneyMatchesR(t *testing.T) {
	cases := loadGolden(t)
	if len(cases) < 40 {
		t.Fatalf("golden file has %d cases, want at least 40", len(cases))
	}
	var s Scratch // one scratch across all cases also proves reuse is safe
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
			same := func(a, b float64) bool { return a == b }
			if tc.Method == MethodNormal {
				same = rootClose
			}
			if !same(got.Estimate, tc.Estimate) {
				t.Errorf("estimate = %.17g, R = %.17g (diff %g)", got.Estimate, tc.Estimate, got.Estimate-tc.Estimate)
			}
			if !same(got.CILow, tc.CILow) || !same(got.CIHigh, tc.CIHigh) {
				t.Errorf("interval = [%.17g, %.17g], R = [%.17g, %.17g]", got.CILow, got.CIHigh, tc.CILow, tc.CIHigh)
			}
		})
	}
}
