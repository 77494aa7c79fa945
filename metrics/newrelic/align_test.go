package newrelic

import (
	"testing"
	"time"
)

// TestStepAlignment: metric rollups (whole minutes) and TIMESERIES buckets (based on UNTIL) are the canary's steps only when they start on a multiple of the step. The scheduler refuses a canary off that grid
// (analysis.TestSequentialOffTheProvidersGrid).
func TestStepAlignment(t *testing.T) {
	var p Provider
	for _, tc := range []struct {
		name       string
		step, want time.Duration
	}{
		{"a minute", time.Minute, time.Minute},
		{"five minutes", 5 * time.Minute, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.StepAlignment(tc.step); got != tc.want {
				t.Errorf("StepAlignment(%s) = %s, want %s", tc.step, got, tc.want)
			}
		})
	}
}
