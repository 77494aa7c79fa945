package memstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) analysis.Store { return New() }, nil)
}

// TestCopies: what a caller holds is never the store's own state.
func TestCopies(t *testing.T) {
	ctx := context.Background()
	s := New()
	score := 50.0
	c := &analysis.Canary{ID: "a", AnalysisHash: "h", Canary: map[string]string{"track": "canary"}, Score: &score,
		Status: analysis.StatusRunning, NextIndex: 1, CreatedAt: time.Unix(1, 0)}
	if err := s.Create(ctx, c, []byte("src")); err != nil {
		t.Fatal(err)
	}
	c.Canary["track"], score = "changed", 99
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Canary["track"] != "canary" || *got.Score != 50 {
		t.Fatalf("the store shares the caller's maps or pointers: %+v", got)
	}
	got.Canary["track"] = "x"
	r := &analysis.IntervalResult{CanaryID: "a", Index: 1, Points: []analysis.MetricPoints{{Metric: "m", Canary: []analysis.TimeValue{{1, 2}}}}}
	if _, err := s.RecordInterval(ctx, r, func(c *analysis.Canary) ([]analysis.Action, error) { c.NextIndex = 2; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	r.Points[0].Canary[0][1] = 7
	rs, _ := s.Intervals(ctx, "a")
	if len(rs) != 1 || rs[0].Points[0].Canary[0][1] != 2 {
		t.Fatalf("intervals share the caller's points: %+v", rs)
	}
	if again, _ := s.Get(ctx, "a"); again.Canary["track"] != "canary" || again.NextIndex != 2 {
		t.Fatalf("after record: %+v", again)
	}

	s.Delete("a")
	if _, err := s.Get(ctx, "a"); !errors.Is(err, analysis.ErrNotFound) || s.Len() != 0 {
		t.Fatalf("after Delete: %v, %d canaries", err, s.Len())
	}
	if src, err := s.Analysis(ctx, "h"); err != nil || string(src) != "src" {
		t.Fatalf("Delete must keep analysis snapshots: %q %v", src, err)
	}
	s.Close()
	if _, err := s.Get(ctx, "a"); !errors.Is(err, errClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
