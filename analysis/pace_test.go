package analysis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/metrics"
)

// pacedProvider is a metrics.Pacer whose first Pace waits longer than the scheduler's
// query timeout (200 ms in the harness), as a Datadog budget that is used up does.
type pacedProvider struct {
	metrics.Provider
	mu          sync.Mutex
	paces       int
	hadDeadline bool
}

func (p *pacedProvider) Pace(ctx context.Context) error {
	p.mu.Lock()
	p.paces++
	first := p.paces == 1
	if _, ok := ctx.Deadline(); ok {
		p.hadDeadline = true
	}
	p.mu.Unlock()
	if first {
		select {
		case <-time.After(400 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Issue 18 item 7: a provider's own pacing delays the interval instead of failing it: the
// scheduler waits on Pace before each query, outside the query timeout.
func TestProviderPacingDelaysIntervals(t *testing.T) {
	h := newHarness(t)
	h.stop()
	var pp *pacedProvider
	h.wrap = func(p metrics.Provider) metrics.Provider {
		pp = &pacedProvider{Provider: p}
		return pp
	}
	h.start()
	c := h.register("ok", "ok")
	h.until("the canary ends", h.ended(c.ID))
	d := h.get(c.ID)
	if d.Status != analysis.StatusPass || len(d.Results) == 0 {
		t.Fatalf("status %s (%s), %d intervals; want pass", d.Status, d.Reason, len(d.Results))
	}
	for _, r := range d.Results {
		if r.Score.Errors != 0 {
			t.Errorf("interval %d has %d metrics in error: %+v", r.Index, r.Score.Errors, r.Metrics)
		}
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.paces < 2*len(d.Results) || pp.hadDeadline {
		t.Errorf("%d paces for %d intervals, a deadline on Pace's context: %v; want one per query, none", pp.paces, len(d.Results), pp.hadDeadline)
	}
}
