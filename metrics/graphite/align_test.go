package graphite

import (
	"strings"
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

// TestWholeSteps: the counts and histogram judges are refused on Graphite, saying why.
func TestWholeSteps(t *testing.T) {
	var p Provider
	if err := p.WholeSteps(); err == nil || !strings.Contains(err.Error(), "summarize() labels a bucket by its start") || !strings.Contains(err.Error(), "use a window judge") {
		t.Errorf("WholeSteps() = %v, want why, and what to use instead", err)
	}
}
