package synthetic

import (
	"slices"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics"
)

// TestRollbacks: a rolled-back cohort's points from the rollback on are drawn without
// its regression, unless the regression survives rollbacks; other apps and the points
// before are unchanged.
func TestRollbacks(t *testing.T) {
	cfg := Config{Seed: 1, Regressions: map[string]map[string]Regression{
		"bad":    {"latency_p50": regression(func(r *Regression) { r.Ratio = 3 })},
		"sticky": {"latency_p50": regression(func(r *Regression) { r.Ratio = 3; r.SurvivesRollback = true })},
	}}
	rb := NewRollbacks()
	p, err := WithRollbacks(rb)(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := t0.Add(5 * time.Minute)
	rb.RollBack("checkout", "bad", at)
	rb.RollBack("checkout", "sticky", at)
	rb.RollBack("checkout", "bad", at.Add(time.Minute)) // a retry: the first one counts
	if when, ok := rb.When("checkout", "bad"); !ok || !when.Equal(at) {
		t.Fatalf("rolled back at %s (%v), want %s", when, ok, at)
	}
	median := func(cohort, app string, from, to time.Time) float64 {
		s, err := p.Query(t.Context(), metrics.Query{Text: "signal=latency_p50 cohort=" + cohort + " app=" + app, Start: from, End: to, Step: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return medianOf(s.AppendValues(nil))
	}
	base := median("stable", "checkout", t0, t0.Add(10*time.Minute))
	cases := []struct {
		name, cohort, app string
		from, to          time.Time
		ratio             float64
	}{
		{"before the rollback", "bad", "checkout", t0, at.Add(-time.Second), 3},
		{"after the rollback", "bad", "checkout", at, at.Add(5 * time.Minute), 1},
		{"another app is not rolled back", "bad", "payments", at, at.Add(5 * time.Minute), 3},
		{"a regression that survives the rollback", "sticky", "checkout", at, at.Add(5 * time.Minute), 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.cohort, tc.app, tc.from, tc.to) / base; got < tc.ratio*0.85 || got > tc.ratio*1.15 {
				t.Errorf("median ×%.2f of the baseline, want about ×%v", got, tc.ratio)
			}
		})
	}
}

func regression(f func(*Regression)) Regression {
	r := DefaultRegression()
	f(&r)
	return r
}

func medianOf(v []float64) float64 {
	var ok []float64
	for _, x := range v {
		if x == x {
			ok = append(ok, x)
		}
	}
	if len(ok) == 0 {
		return 0
	}
	slices.Sort(ok)
	return ok[len(ok)/2]
}
