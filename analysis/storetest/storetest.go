// Package storetest is the conformance test every analysis.Store runs, so the embedded
// store and a future shared one promise the same things. It only calls the Store
// interface; it never knows which implementation it tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/judge"
)

// Run checks a Store. open returns a store on a fresh location; reopen, when not nil,
// closes nothing and returns a second store on the same data as the last one opened (it is
// called after that store is closed), to check persistence.
func Run(t *testing.T, open func(t *testing.T) analysis.Store, reopen func(t *testing.T) analysis.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	newCanary := func(id string, created time.Time) *analysis.Canary {
		return &analysis.Canary{
			ID: id, Name: "web " + id, Analysis: "golden", AnalysisHash: "h1",
			Baseline: map[string]string{"track": "baseline"}, Canary: map[string]string{"track": "canary"},
			Start: created, Lifetime: 30 * time.Minute, Interval: time.Minute, Intervals: 30, NextIndex: 1,
			Status: analysis.StatusRunning, CreatedAt: created, UpdatedAt: created,
		}
	}

	t.Run("create get list", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		for i, id := range []string{"b", "a", "c"} {
			if err := s.Create(ctx, newCanary(id, t0.Add(time.Duration(i)*time.Second)), []byte("src")); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Create(ctx, newCanary("a", t0), []byte("src")); !errors.Is(err, analysis.ErrExists) {
			t.Errorf("second create: want ErrExists, got %v", err)
		}
		c, err := s.Get(ctx, "a")
		if err != nil || c.Name != "web a" || c.Canary["track"] != "canary" || !c.CreatedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("get: %+v %v", c, err)
		}
		if _, err := s.Get(ctx, "zz"); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("get missing: want ErrNotFound, got %v", err)
		}
		if _, err := s.Update(ctx, "c", func(c *analysis.Canary) ([]analysis.Action, error) {
			c.Status = analysis.StatusFail
			return []analysis.Action{{Kind: "abort", Status: analysis.StatusFail, Trigger: "api"}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		all, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(all); got != "b,a,c" {
			t.Errorf("list all: %s", got)
		}
		running, err := s.List(ctx, analysis.StatusRunning)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(running); got != "b,a" {
			t.Errorf("list running: %s", got)
		}
		acts, err := s.Actions(ctx, "c")
		if err != nil || len(acts) != 1 || acts[0].Kind != "abort" || acts[0].CanaryID != "c" || acts[0].Seq == 0 {
			t.Errorf("actions: %+v %v", acts, err)
		}
		src, err := s.Analysis(ctx, "h1")
		if err != nil || string(src) != "src" {
			t.Errorf("analysis: %q %v", src, err)
		}
	})

	t.Run("intervals once", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if err := s.Create(ctx, newCanary("x", t0), []byte("src")); err != nil {
			t.Fatal(err)
		}
		advance := func(c *analysis.Canary) ([]analysis.Action, error) { c.NextIndex++; return nil, nil }
		for i := 1; i <= 3; i++ {
			r := &analysis.IntervalResult{CanaryID: "x", Index: i, Score: judge.ScoreResult{Score: float64(90 + i)}}
			if _, err := s.RecordInterval(ctx, r, advance); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "x", Index: 2}, advance)
		if !errors.Is(err, analysis.ErrIntervalExists) {
			t.Errorf("second record: want ErrIntervalExists, got %v", err)
		}
		boom := errors.New("boom")
		_, err = s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "x", Index: 4}, func(c *analysis.Canary) ([]analysis.Action, error) {
			c.NextIndex = 99
			return nil, boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("failing mutation: got %v", err)
		}
		c, _ := s.Get(ctx, "x")
		if c.NextIndex != 4 {
			t.Errorf("next index: want 4 (3 recorded, the rest refused), got %d", c.NextIndex)
		}
		rs, err := s.Intervals(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%d:%g", r.Index, r.Score.Score))
		}
		if fmt.Sprint(got) != "[1:91 2:92 3:93]" {
			t.Errorf("intervals: %v", got)
		}
		if _, err := s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "nope", Index: 1}, advance); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("unknown canary: want ErrNotFound, got %v", err)
		}
	})

	if reopen == nil {
		return
	}
	t.Run("persists", func(t *testing.T) {
		s := open(t)
		if err := s.Create(ctx, newCanary("p", t0), []byte("src")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "p", Index: 1}, func(c *analysis.Canary) ([]analysis.Action, error) {
			c.NextIndex = 2
			return []analysis.Action{{Kind: "verdict"}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen(t)
		defer s.Close()
		c, err := s.Get(ctx, "p")
		if err != nil || c.NextIndex != 2 {
			t.Fatalf("after reopen: %+v %v", c, err)
		}
		rs, _ := s.Intervals(ctx, "p")
		as, _ := s.Actions(ctx, "p")
		if len(rs) != 1 || len(as) != 1 {
			t.Errorf("after reopen: %d intervals, %d actions", len(rs), len(as))
		}
	})
}

func ids(cs []*analysis.Canary) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += ","
		}
		s += c.ID
	}
	return s
}
