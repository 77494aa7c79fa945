package guard

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
)

// BenchmarkOnVerdict measures what the scheduler's worker pays to hand a final canary
// to the guard: an enqueue, whatever the actuators are doing.
func BenchmarkOnVerdict(b *testing.B) {
	e := newEnv(b, envOpts{log: zap.NewNop()})
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.g.OnVerdict(ctx, c, act)
	}
	b.StopTimer()
	e.idle()
	e.close()
}
