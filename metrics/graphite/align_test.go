package graphite

import (
	"testing"
	"time"
)

// TestStepAlignment: whisper's points, graphite-web's consolidation and summarize() are on multiples of their resolution since the epoch. The scheduler refuses a canary off that grid
// (analysis.TestSequentialOffTheProvidersGrid).
func TestStepAlignment(t *testing.T) {
	var p Provider
	for _, tc := range []struct {
		name       string
		step, want time.Duration
	}{
		{"10 s", 10 * time.Second, 10 * time.Second},
		{"a minute", time.Minute, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.StepAlignment(tc.step); got != tc.want {
				t.Errorf("StepAlignment(%s) = %s, want %s", tc.step, got, tc.want)
			}
		})
	}
}
