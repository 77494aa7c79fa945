package analysis_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

// countingSource serves one analysis snapshot and counts the reads.
type countingSource struct {
	src   map[string][]byte
	reads atomic.Int32
}

func (s *countingSource) Analysis(_ context.Context, hash string) ([]byte, error) {
	s.reads.Add(1)
	src, ok := s.src[hash]
	if !ok {
		return nil, analysis.ErrNotFound
	}
	return src, nil
}

// One cache serves the scheduler and the safety layer: a snapshot is read and parsed
// once, whoever asks first; an unreadable one is an error naming its hash, every time.
func TestSnapshotsShared(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Analyses["basic"]
	src := &countingSource{src: map[string][]byte{a.Hash: a.Source, "bad": []byte("metrics: 7")}}
	snaps := analysis.NewSnapshots(src)
	sched := analysis.NewScheduler(analysis.Options{Store: nil, Snapshots: snaps})
	c := &analysis.Canary{Analysis: "basic", AnalysisHash: a.Hash}
	for _, read := range []func(context.Context, *analysis.Canary) (*config.Analysis, error){sched.Analysis, snaps.Analysis, sched.Analysis} {
		got, err := read(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != a.Hash || len(got.Metrics) != len(a.Metrics) {
			t.Fatalf("snapshot %s with %d metrics, want %s with %d", got.Hash, len(got.Metrics), a.Hash, len(a.Metrics))
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("snapshot read %d times, want 1", n)
	}
	for range 2 {
		if _, err := snaps.Analysis(t.Context(), &analysis.Canary{Analysis: "basic", AnalysisHash: "bad"}); err == nil || !strings.Contains(err.Error(), "analysis snapshot bad") {
			t.Errorf("bad snapshot: %v", err)
		}
	}
	if n := src.reads.Load(); n != 3 {
		t.Errorf("a bad snapshot was cached: %d reads, want 3", n)
	}
}
