package datadog

import (
	"testing"
	"time"
)

// TestStepAlignment: rollup (V1) and interval (V2) buckets are on multiples of the step since the epoch, so a canary's steps must start on one. The scheduler refuses a canary off that grid
// (analysis.TestSequentialOffTheProvidersGrid).
func TestStepAlignment(t *testing.T) {
	var p Provider
	for _, tc := range []struct {
		name       string
		step, want time.Duration
	}{
		{"15 s steps", 15 * time.Second, 15 * time.Second},
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
