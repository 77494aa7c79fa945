package judge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/field"
)

// Validate is the one home of the judge's rules: it returns every problem, each named by
// its key in a metric's judge: block.
func TestValidateEveryError(t *testing.T) {
	cases := []struct {
		name string
		spec MetricSpec
		want []string // "" is valid
	}{
		{"defaults are valid", MetricSpec{}.WithDefaults(), nil},
		{"several keys at once", MetricSpec{Kind: KindRatio, Confidence: 2, AllowedIncrease: 0.5, Max: ptr(-1), For: time.Minute, Step: 15 * time.Second}.WithDefaults(),
			[]string{"confidence: must be in (0, 1)", "allowed_increase: must be >= 1 (1.1 tolerates +10%)", "max: must be > 0"}},
		{"exact bound: min == max", MetricSpec{Kind: KindThreshold, Min: ptr(1), Max: ptr(1), For: time.Minute, Step: 15 * time.Second}.WithDefaults(), nil},
		{"min above max", MetricSpec{Kind: KindThreshold, Min: ptr(2), Max: ptr(1)}.WithDefaults(), []string{"min: must be <= max (1)"}},
		{"window without bounds", MetricSpec{Kind: KindThreshold}.WithDefaults(), []string{"a threshold judge needs min, max or both"}},
		{"window keys on mannwhitney", MetricSpec{Max: ptr(1), For: time.Minute}.WithDefaults(),
			[]string{"max: only for threshold and ratio judges", "for: only for threshold and ratio judges"}},
		{"alpha on mannwhitney", MetricSpec{Alpha: 0.01}.WithDefaults(), []string{"alpha: only for counts and histogram judges (mannwhitney uses confidence)"}},
		{"sequential alpha range", MetricSpec{Kind: KindCounts, Alpha: 0.7}.WithDefaults(), []string{"alpha: must be in (0, 0.5]"}},
		{"unknown names", MetricSpec{Kind: "ttest", Direction: "up", NaNStrategy: "drop", Confidence: 0.9, AllowedIncrease: 1, AllowedDecrease: 1, OutlierFactor: 3, MinPoints: 0},
			[]string{`type: unknown judge "ttest", want one of [mannwhitney threshold ratio counts histogram]`,
				`direction: unknown direction "up", want one of [increase decrease either]`,
				`nan_strategy: unknown strategy "drop", want one of [remove zero]`,
				"min_points: must be >= 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var es field.Errors
			if !errors.As(err, &es) {
				t.Fatalf("want field.Errors, got %v", err)
			}
			if got := es.Error(); got != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(tc.want, "\n"))
			}
		})
	}
}
