package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/judge"
)

// Kayenta's semantics as config keys: a metric in several groups, muted, and the
// Kayenta measures with their defaults.
func TestParseKayentaSemantics(t *testing.T) {
	src := strings.NewReplacer(
		"        group: errors\n", "        groups: [errors, latency]\n",
		"judge: {type: mannwhitney, critical: true}", "judge: {type: mannwhitney, critical: true, muted: true, effect_size: cles, direction: either, confidence: 0.98}",
	).Replace(base)
	c, err := Parse([]byte(src), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	m := c.Analyses["golden-signals"].Metrics[0]
	if m.Group != "errors" || !slices.Equal(m.Groups, []string{"errors", "latency"}) || !slices.Equal(m.Spec.Groups, m.Groups) {
		t.Errorf("groups: %q %q %q", m.Group, m.Groups, m.Spec.Groups)
	}
	s := m.Spec
	if !s.Muted || s.EffectSize != judge.EffectCLES || s.AllowedIncrease != 0.5 || s.AllowedDecrease != 0.5 ||
		s.Tolerance != judge.DefaultKayentaTolerance || s.CriticalIncrease != 0.5 || s.CriticalDecrease != 0.5 {
		t.Errorf("spec: %+v", s)
	}
	if d := c.Analyses["golden-signals"].Metrics[1].Spec; d.EffectSize != judge.EffectInterval || d.Tolerance != 0 || d.AllowedIncrease != 1 {
		t.Errorf("the default measure: %+v", d)
	}

	src = strings.Replace(base, "judge: {type: mannwhitney, critical: true}",
		"judge: {type: mannwhitney, effect_size: mean_ratio, allowed_increase: 1.2, allowed_decrease: 0.8, critical_increase: 2, tolerance: 0.1}", 1)
	c, err = Parse([]byte(src), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Analyses["golden-signals"].Metrics[0].Spec; s.AllowedIncrease != 1.2 || s.AllowedDecrease != 0.8 ||
		s.CriticalIncrease != 2 || s.CriticalDecrease != 1 || s.Tolerance != 0.1 {
		t.Errorf("mean_ratio spec: %+v", s)
	}
}

func TestParseKayentaSemanticsErrors(t *testing.T) {
	cases := []struct {
		name     string
		old, new string
		want     string
	}{
		{"group and groups", "        group: errors\n", "        group: errors\n        groups: [errors]\n",
			"analyses.golden-signals.metrics[error-rate].groups: not with group: list every group in groups"},
		{"unknown group in groups", "        group: errors\n", "        groups: [errors, nope]\n",
			`analyses.golden-signals.metrics[error-rate].groups: "nope" is not in the analysis' groups`},
		{"repeated group", "        group: errors\n", "        groups: [errors, errors]\n",
			`analyses.golden-signals.metrics[error-rate].groups[1]: empty or repeated group "errors"`},
		{"tolerance without a Kayenta measure", "judge: {type: mannwhitney, critical: true}", "judge: {type: mannwhitney, tolerance: 0.1}",
			"analyses.golden-signals.metrics[error-rate].judge.tolerance: only with effect_size mean_ratio or cles (Kayenta's measures)"},
		{"unknown measure", "judge: {type: mannwhitney, critical: true}", "judge: {type: mannwhitney, effect_size: cohen}",
			`analyses.golden-signals.metrics[error-rate].judge.effect_size: unknown measure "cohen", want one of [interval mean_ratio cles]`},
		{"cles bound out of range", "judge: {type: mannwhitney, critical: true}", "judge: {type: mannwhitney, effect_size: cles, allowed_increase: 1.5}",
			"analyses.golden-signals.metrics[error-rate].judge.allowed_increase: must be in [0, 1] (a share of pairs) with effect_size cles"},
		{"Kayenta measure on a window judge", "judge: {type: ratio, max: 1.5, for: 10m}", "judge: {type: ratio, max: 1.5, for: 10m, effect_size: mean_ratio}",
			"analyses.golden-signals.metrics[p99].judge.effect_size: mean_ratio is for mannwhitney judges only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(base, tc.old, tc.new, 1)
			_, err := Parse([]byte(src), testKinds())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
