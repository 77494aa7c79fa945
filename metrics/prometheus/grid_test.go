package prometheus

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus/promtest"
)

// TestCountsOnTheStepGrid: a range query answers on the canary's own grid, start + k·step,
// whatever the start: on a real Prometheus (a counter backfilled as scraped every 15 s,
// 7 s past the minute) a canary that started 20 s off the minute, not a multiple of its
// 15 s step, reads at each of its steps exactly the scrapes' increments since the
// previous step, with the shipped per-step shape, so Prometheus needs no alignment
// (analysis.StepAligner) and no offset.
func TestCountsOnTheStepGrid(t *testing.T) {
	const step, scrape = 15 * time.Second, 15 * time.Second
	base := time.Now().Add(-time.Hour).Truncate(time.Hour)
	var om strings.Builder
	om.WriteString("# TYPE requests counter\n")
	var at []time.Time
	var incs []float64
	total := 0.0
	for i := range 40 {
		ts := base.Add(7*time.Second + time.Duration(i)*scrape)
		inc := float64(i + 1) // each scrape's increment is its own
		total += inc
		at, incs = append(at, ts), append(incs, inc)
		fmt.Fprintf(&om, "requests_total{track=\"canary\"} %g %d\n", total, ts.Unix())
	}
	om.WriteString("# EOF\n")
	path := filepath.Join(t.TempDir(), "series.om")
	if err := os.WriteFile(path, []byte(om.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newTestProvider(t, promtest.StartWith(t, promtest.Options{OpenMetrics: path}), 0, 10*time.Second)
	start := base.Add(2*time.Minute + 20*time.Second)
	end := start.Add(5 * time.Minute)
	s, err := p.Query(t.Context(), metrics.Query{
		Text:  `(requests_total{track="canary"} - requests_total{track="canary"} offset 15s) >= 0 or requests_total{track="canary"}`,
		Start: start, End: end, Step: step,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Streams) != 1 {
		t.Fatalf("%d streams: %+v", len(s.Streams), s.Streams)
	}
	var want []metrics.Point
	for ts := start; !ts.After(end); ts = ts.Add(step) {
		sum := 0.0
		for k, a := range at {
			if a.After(ts.Add(-step)) && !a.After(ts) {
				sum += incs[k]
			}
		}
		want = append(want, metrics.Point{T: ts.UnixMilli(), V: sum})
	}
	got := s.Streams[0].Points
	if len(got) != len(want) {
		t.Fatalf("%d points, want %d on the grid start + k·%s: %v", len(got), len(want), step, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
