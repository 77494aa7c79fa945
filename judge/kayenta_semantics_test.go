package judge

import (
	"strings"
	"testing"
)

// Muted metrics are never scored, a metric in several groups counts in each.
func TestScoreMutedAndGroups(t *testing.T) {
	cases := []struct {
		name    string
		results []MetricResult
		groups  map[string]float64
		rules   ScoreRules
		score   float64
		verdict Verdict
		groupsN int
	}{
		{
			name: "muted critical high does not fail",
			results: []MetricResult{
				{Name: "a", Group: "g", Classification: ClassPass},
				{Name: "b", Group: "g", Classification: ClassHigh, Critical: true, Muted: true},
			},
			score: 100, verdict: VerdictPass, groupsN: 1,
		},
		{
			name: "muted nodata does not count toward Kayenta's half",
			results: []MetricResult{
				{Name: "a", Group: "g", Classification: ClassPass},
				{Name: "b", Group: "g", Classification: ClassNoData, Muted: true},
				{Name: "c", Group: "g", Classification: ClassNoData, Muted: true},
			},
			rules: RulesKayenta, score: 100, verdict: VerdictPass, groupsN: 1,
		},
		{
			name: "a metric in two groups fails both",
			results: []MetricResult{
				{Name: "a", Group: "errors", Classification: ClassPass},
				{Name: "b", Group: "latency", Classification: ClassPass},
				{Name: "c", Group: "errors", Groups: []string{"errors", "latency"}, Classification: ClassHigh},
			},
			groups: map[string]float64{"errors": 50, "latency": 50},
			rules:  RulesKayenta, score: 50, verdict: VerdictFail, groupsN: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Score(tc.results, tc.groups, Thresholds{Rules: tc.rules})
			if got.Score != tc.score || got.Verdict != tc.verdict || len(got.Groups) != tc.groupsN {
				t.Errorf("got score %v verdict %s groups %+v (%s), want %v %s %d groups", got.Score, got.Verdict, got.Groups, got.Reason, tc.score, tc.verdict, tc.groupsN)
			}
		})
	}
}

// Under a Kayenta measure a critical metric's change below critical_increase is an
// ordinary high, and the reason says so; the result carries the effect.
func TestClassifyKayentaCriticalBounds(t *testing.T) {
	b := []float64{1.0, 2.2, 1.1, 2.5, 3.0}
	c := []float64{20.0, 22.0, 21.0, 25.0, 30.0}
	spec := MetricSpec{Name: "latency", Direction: DirectionEither, EffectSize: EffectMeanRatio, Critical: true,
		AllowedIncrease: 5, CriticalIncrease: 13}
	res := Classify(spec, b, c)
	if res.Classification != ClassHigh || res.Critical {
		t.Fatalf("got %s critical=%v, want a non-critical high: %s", res.Classification, res.Critical, res.Reason)
	}
	if res.Effect.Measure != EffectMeanRatio || res.Effect.Value < 12.04 || res.Effect.Value > 12.05 || res.KayentaRatio() != res.Effect.Value {
		t.Errorf("effect %+v", res.Effect)
	}
	for _, want := range []string{"mean ratio ×12 (allowed ×1..×5)", "higher than tolerated", "not critical: the effect is within critical_increase"} {
		if !strings.Contains(res.Reason, want) {
			t.Errorf("reason %q does not contain %q", res.Reason, want)
		}
	}
	spec.CriticalIncrease = 12
	if res := Classify(spec, b, c); !res.Critical || res.Classification != ClassHigh {
		t.Errorf("above critical_increase: %s critical=%v", res.Classification, res.Critical)
	}
}
