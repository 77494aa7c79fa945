package analysis_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// batchingProvider is a metrics.Batcher over another provider: it answers each query of
// a batch as the other would, and records the batches and the queries asked alone.
type batchingProvider struct {
	metrics.Provider
	mu      sync.Mutex
	batches [][]string // each batch's query texts, sorted
	alone   []string
}

func (p *batchingProvider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	p.mu.Lock()
	p.alone = append(p.alone, q.Text)
	p.mu.Unlock()
	return p.Provider.Query(ctx, q)
}

func (p *batchingProvider) QueryBatch(ctx context.Context, qs []metrics.Query) []metrics.Result {
	texts := make([]string, len(qs))
	out := make([]metrics.Result, len(qs))
	for i, q := range qs {
		texts[i] = q.Text
		out[i].Series, out[i].Err = p.Provider.Query(ctx, q)
	}
	slices.Sort(texts)
	p.mu.Lock()
	p.batches = append(p.batches, texts)
	p.mu.Unlock()
	return out
}

func (p *batchingProvider) recorded() ([][]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.batches), slices.Clone(p.alone)
}

// Issue 18 item 7: a provider that batches gets each interval's queries (both cohorts
// of every metric) in one QueryBatch, including the intervals that fetch only the new
// steps, and is never asked a query alone; each query's failure stays its metric's.
func TestBatchPerInterval(t *testing.T) {
	for _, tc := range []struct {
		name, canary string
		want         analysis.Status
	}{
		{"both answer", "ok", analysis.StatusPass},
		{"one cohort fails", "broken", analysis.StatusError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.stop()
			var bp *batchingProvider
			h.wrap = func(p metrics.Provider) metrics.Provider {
				bp = &batchingProvider{Provider: p}
				return bp
			}
			h.start()
			c := h.register("ok", tc.canary)
			h.until("the canary ends", h.ended(c.ID))
			d := h.get(c.ID)
			if d.Status != tc.want {
				t.Fatalf("status %s (%s), want %s", d.Status, d.Reason, tc.want)
			}
			batches, alone := bp.recorded()
			if len(alone) != 0 {
				t.Errorf("asked alone: %q", alone)
			}
			if len(batches) != len(d.Results) {
				t.Errorf("%d batches for %d intervals", len(batches), len(d.Results))
			}
			want := []string{"ok-baseline", tc.canary + "-canary", "rok-baseline", "r" + tc.canary + "-canary"}
			slices.Sort(want)
			for i, b := range batches {
				if !slices.Equal(b, want) {
					t.Errorf("batch %d: %q, want %q", i, b, want)
				}
			}
			for _, r := range d.Results {
				for _, m := range r.Metrics {
					if tc.canary == "ok" && m.Classification != judge.ClassPass {
						t.Errorf("interval %d %s: %s (%s)", r.Index, m.Name, m.Classification, m.Reason)
					}
					if tc.canary == "broken" && (m.Classification != judge.ClassError || !strings.Contains(m.Reason, "canary query: fake: backend unavailable")) {
						t.Errorf("interval %d %s: %s (%s), want the canary query's error", r.Index, m.Name, m.Classification, m.Reason)
					}
				}
			}
		})
	}
}

// The sequential judges' queries (errors and requests, buckets) are batched too, from
// the step after the stored evidence's newest: each step is still fetched once.
func TestBatchSequential(t *testing.T) {
	cfg, err := config.Parse([]byte(seqConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	cp := &countsProvider{fetched: map[string]map[int64]int{}}
	bp := &batchingProvider{Provider: cp}
	h := &seqHarness{t: t, clock: newFakeClock(), path: filepath.Join(t.TempDir(), "canaryd.db"), cfg: cfg, prov: cp, provider: bp}
	h.start()
	t.Cleanup(h.stop)
	c, err := h.sched.Register(t.Context(), analysis.Registration{
		Name: "web", Analysis: "seq",
		Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.until("the canary to end", func() bool { return h.get(c.ID).Status.Final() })
	d := h.get(c.ID)
	if d.Status != analysis.StatusPass {
		t.Fatalf("status %s (%s), want pass", d.Status, d.Reason)
	}
	batches, alone := bp.recorded()
	if len(alone) != 0 || len(batches) != len(d.Results) {
		t.Errorf("%d batches for %d intervals, asked alone %q", len(batches), len(d.Results), alone)
	}
	for i, b := range batches {
		if len(b) != 6 {
			t.Errorf("batch %d: %q, want the 6 queries", i, b)
		}
	}
	for text, ts := range cp.fetched {
		for at, n := range ts {
			if n != 1 {
				t.Errorf("%s: step %d fetched %d times", text, at, n)
			}
		}
	}
}

// escapingBatcher is a batching provider whose language quotes values (a ValueEscaper).
type escapingBatcher struct{ *batchingProvider }

func (escapingBatcher) EscapeValue(v string) string { return "<" + v + ">" }

// The batch holds the queries as the metrics render them for the provider's language
// (values escaped), so none is asked again alone.
func TestBatchEscapedValues(t *testing.T) {
	h := newHarness(t)
	h.stop()
	var bp *batchingProvider
	h.wrap = func(p metrics.Provider) metrics.Provider {
		bp = &batchingProvider{Provider: p}
		return escapingBatcher{bp}
	}
	h.start()
	c := h.register("ok", "ok")
	h.until("the canary ends", h.ended(c.ID))
	if d := h.get(c.ID); d.Status != analysis.StatusPass {
		t.Fatalf("status %s (%s), want pass", d.Status, d.Reason)
	}
	batches, alone := bp.recorded()
	if len(alone) != 0 || len(batches) == 0 {
		t.Fatalf("%d batches, asked alone %q", len(batches), alone)
	}
	if want := []string{"<ok>-<baseline>", "<ok>-<canary>", "r<ok>-<baseline>", "r<ok>-<canary>"}; !slices.Equal(batches[0], want) {
		t.Errorf("batch %q, want %q", batches[0], want)
	}
}
