package boltstore

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/storetest"
	"github.com/canaryd/canaryd/judge"
)

func TestStore(t *testing.T) {
	var last string
	open := func(t *testing.T) analysis.Store {
		last = filepath.Join(t.TempDir(), "sub", "canaryd.db")
		s, err := Open(last, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	reopen := func(t *testing.T) analysis.Store {
		s, err := Open(last, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, open, reopen)
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "canaryd.db")
	s, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := Open(path, 50*time.Millisecond); err == nil {
		t.Fatal("a second Open of a locked file must fail")
	}
}

// IntervalSummaries reads what Intervals does, points left out.
func TestIntervalSummaries(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "c.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c := &analysis.Canary{ID: "abc", Name: "web", Analysis: "a", AnalysisHash: "h", Status: analysis.StatusRunning, Intervals: 3, NextIndex: 1}
	if err := s.Create(ctx, c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		r := &analysis.IntervalResult{CanaryID: "abc", Index: i,
			Metrics: []judge.MetricResult{{Name: "m", Classification: judge.ClassPass, Reason: fmt.Sprint("ok ", i)}},
			Points:  []analysis.MetricPoints{{Metric: "m", Baseline: []analysis.TimeValue{{1000, 1.5}}, Canary: []analysis.TimeValue{{1000, 2.5}}}}}
		if _, err := s.RecordInterval(ctx, r, func(c *analysis.Canary) ([]analysis.Action, error) { c.NextIndex++; return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	full, err := s.Intervals(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := s.IntervalSummaries(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if len(full) != 2 || len(sum) != 2 || len(full[1].Points) != 1 {
		t.Fatalf("full %+v, summaries %+v", full, sum)
	}
	for i := range full {
		if sum[i].Points != nil {
			t.Errorf("summary %d has points", i)
		}
		full[i].Points = nil
		if !reflect.DeepEqual(full[i], sum[i]) {
			t.Errorf("summary %d:\n%+v\nwant\n%+v", i, sum[i], full[i])
		}
	}
}

// A file written before the list index existed gets it at open.
func TestIndexBuiltAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		c := &analysis.Canary{ID: id, AnalysisHash: "h", Status: analysis.StatusRunning, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		if err := s.Create(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bktByCreated) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, time.Second); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.ListPage(ctx, analysis.ListQuery{Limit: 10})
	if err != nil || len(p.Canaries) != 3 || p.Canaries[0].ID != "c" || p.Canaries[2].ID != "a" {
		t.Fatalf("after rebuilding the index: %+v %v", p.Canaries, err)
	}
}
