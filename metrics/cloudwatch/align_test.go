package cloudwatch

import (
	"testing"
	"time"
)

// TestStepAlignment: CloudWatch rounds StartTime down to the whole minute (to a multiple of a period under a minute) and starts its periods there. The scheduler refuses a canary off that grid
// (analysis.TestSequentialOffTheProvidersGrid).
func TestStepAlignment(t *testing.T) {
	var p Provider
	for _, tc := range []struct {
		name       string
		step, want time.Duration
	}{
		{"a high-resolution period: its own multiple", 10 * time.Second, 10 * time.Second},
		{"30 s", 30 * time.Second, 30 * time.Second},
		{"a minute", time.Minute, time.Minute},
		{"five minutes: the whole minute StartTime is rounded to", 5 * time.Minute, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.StepAlignment(tc.step); got != tc.want {
				t.Errorf("StepAlignment(%s) = %s, want %s", tc.step, got, tc.want)
			}
		})
	}
}
