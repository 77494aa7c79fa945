// Package storetest is the conformance test every analysis.Store runs, so the embedded
// store and a future shared one promise the same things. It only calls the Store
// interface; it never knows which implementation it tests.
package storetest

import (
	"context"
	"encoding/json"
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
			return []analysis.Action{{Kind: "abort", Status: analysis.StatusFail, Cause: analysis.CauseAPI}}, nil
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

	t.Run("sequential state with its interval", func(t *testing.T) {
		// A sequential judge's evidence is written in the interval's transaction: stored
		// with it, not without it (an interval already recorded, a failing mutation), and
		// read back as written after a reopen.
		s := open(t)
		if err := s.Create(ctx, newCanary("q", t0), []byte("src")); err != nil {
			t.Fatal(err)
		}
		withState := func(v string) analysis.Mutation {
			return func(c *analysis.Canary) ([]analysis.Action, error) {
				c.NextIndex++
				if c.Sequential == nil {
					c.Sequential = map[string]json.RawMessage{}
				}
				c.Sequential["errors"] = json.RawMessage(v)
				return nil, nil
			}
		}
		if _, err := s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "q", Index: 1}, withState(`{"steps":4}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "q", Index: 1}, withState(`{"steps":8}`)); !errors.Is(err, analysis.ErrIntervalExists) {
			t.Fatalf("replayed interval: want ErrIntervalExists, got %v", err)
		}
		boom := errors.New("boom")
		if _, err := s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: "q", Index: 2}, func(c *analysis.Canary) ([]analysis.Action, error) {
			c.Sequential["errors"] = json.RawMessage(`{"steps":12}`)
			return nil, boom
		}); !errors.Is(err, boom) {
			t.Fatalf("failing mutation: got %v", err)
		}
		if reopen != nil {
			s.Close()
			s = reopen(t)
		}
		defer s.Close()
		c, err := s.Get(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(c.Sequential["errors"]); got != `{"steps":4}` || c.NextIndex != 2 {
			t.Errorf("after reopen: state %s, next index %d; want {\"steps\":4} and 2", got, c.NextIndex)
		}
	})

	t.Run("pages newest first", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		// Seven canaries; two share a creation time (the id orders them), one has none.
		created := map[string]time.Time{
			"a": t0, "b": t0.Add(time.Second), "c": t0.Add(2 * time.Second), "d": t0.Add(2 * time.Second),
			"e": t0.Add(3 * time.Second), "f": t0.Add(4 * time.Second), "z": {},
		}
		for _, id := range []string{"c", "a", "z", "f", "d", "b", "e"} {
			if err := s.Create(ctx, newCanary(id, created[id]), []byte("src")); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"b", "e"} {
			if _, err := s.Update(ctx, id, func(c *analysis.Canary) ([]analysis.Action, error) {
				c.Status = analysis.StatusPass
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name   string
			status analysis.Status
			limit  int
			want   []string // the pages, each a comma-separated list of ids
		}{
			{"all in pages of 3", "", 3, []string{"f,e,d", "c,b,a", "z"}},
			{"all in one page", "", 10, []string{"f,e,d,c,b,a,z"}},
			{"exactly one full page", "", 7, []string{"f,e,d,c,b,a,z"}},
			{"running in pages of 2", analysis.StatusRunning, 2, []string{"f,d", "c,a", "z"}},
			{"pass", analysis.StatusPass, 1, []string{"e", "b"}},
			{"none failed", analysis.StatusFail, 5, []string{""}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []string
				var after *analysis.Cursor
				for range 10 {
					p, err := s.ListPage(ctx, analysis.ListQuery{Status: tc.status, Limit: tc.limit, After: after})
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ids(p.Canaries))
					if p.Next == nil {
						break
					}
					if last := p.Canaries[len(p.Canaries)-1]; *p.Next != analysis.CursorOf(last) {
						t.Errorf("next %+v is not the last canary's place %+v", *p.Next, analysis.CursorOf(last))
					}
					after = p.Next
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("pages %q, want %q", got, tc.want)
				}
			})
		}
		// A cursor whose canary is gone still places the page.
		p, err := s.ListPage(ctx, analysis.ListQuery{Limit: 2, After: &analysis.Cursor{Created: analysis.CreatedNanos(t0.Add(2 * time.Second)), ID: "cc"}})
		if err != nil || ids(p.Canaries) != "c,b" {
			t.Errorf("page after a vanished canary: %s %v", ids(p.Canaries), err)
		}
		counts, err := s.CountByStatus(ctx)
		if err != nil || counts[analysis.StatusRunning] != 5 || counts[analysis.StatusPass] != 2 || len(counts) != 2 {
			t.Errorf("counts %v %v", counts, err)
		}
	})

	t.Run("delete ended", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		end := func(at time.Time) analysis.Mutation {
			return func(c *analysis.Canary) ([]analysis.Action, error) {
				c.Status, c.EndedAt, c.UpdatedAt = analysis.StatusFail, &at, at
				return []analysis.Action{{Kind: "verdict", Status: analysis.StatusFail}}, nil
			}
		}
		// old1, old2, old3 ended long ago; recent ended just now; run still runs (and is old).
		for i, id := range []string{"old1", "old2", "old3", "recent", "run"} {
			if err := s.Create(ctx, newCanary(id, t0.Add(time.Duration(i)*time.Minute)), []byte("src")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RecordInterval(ctx, &analysis.IntervalResult{CanaryID: id, Index: 1}, func(c *analysis.Canary) ([]analysis.Action, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"old1", "old2", "old3"} {
			if _, err := s.Update(ctx, id, end(t0.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Update(ctx, "recent", end(t0.Add(48*time.Hour))); err != nil {
			t.Fatal(err)
		}
		cutoff := t0.Add(24 * time.Hour)
		del, err := s.DeleteEnded(ctx, cutoff, 2)
		if err != nil || ids(del) != "old1,old2" {
			t.Fatalf("first batch: %s %v", ids(del), err)
		}
		del, err = s.DeleteEnded(ctx, cutoff, 2)
		if err != nil || ids(del) != "old3" {
			t.Fatalf("second batch: %s %v", ids(del), err)
		}
		if del, err = s.DeleteEnded(ctx, cutoff, 2); err != nil || len(del) != 0 {
			t.Fatalf("third batch: %s %v", ids(del), err)
		}
		for _, id := range []string{"old1", "old2", "old3"} {
			if _, err := s.Get(ctx, id); !errors.Is(err, analysis.ErrNotFound) {
				t.Errorf("%s: want ErrNotFound after deletion, got %v", id, err)
			}
			rs, _ := s.Intervals(ctx, id)
			as, _ := s.Actions(ctx, id)
			if len(rs) != 0 || len(as) != 0 {
				t.Errorf("%s: %d intervals and %d actions left", id, len(rs), len(as))
			}
		}
		p, err := s.ListPage(ctx, analysis.ListQuery{Limit: 10})
		if err != nil || ids(p.Canaries) != "run,recent" {
			t.Errorf("left: %s %v", ids(p.Canaries), err)
		}
		rs, _ := s.Intervals(ctx, "recent")
		as, _ := s.Actions(ctx, "recent")
		if len(rs) != 1 || len(as) != 1 {
			t.Errorf("recent: %d intervals and %d actions, want 1 and 1", len(rs), len(as))
		}
		counts, err := s.CountByStatus(ctx)
		if err != nil || counts[analysis.StatusRunning] != 1 || counts[analysis.StatusFail] != 1 {
			t.Errorf("counts %v %v", counts, err)
		}
	})

	t.Run("keys", func(t *testing.T) {
		// A key is held by one stored canary: a second Create with it stores nothing, a
		// mutation cannot change it, ?key= lists it, and deleting the canary frees it.
		s := open(t)
		keyed := func(id, key string, created time.Time) *analysis.Canary {
			c := newCanary(id, created)
			c.Key = key
			c.Asked = &analysis.Asked{Lifetime: 30 * time.Minute}
			return c
		}
		if err := s.Create(ctx, keyed("k1", "checkout/run-7@a1b2", t0), []byte("src")); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, keyed("k2", "checkout/run-7@a1b2", t0.Add(time.Second)), []byte("src")); !errors.Is(err, analysis.ErrKeyExists) {
			t.Fatalf("second create with the key: want ErrKeyExists, got %v", err)
		}
		if _, err := s.Get(ctx, "k2"); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("the refused canary was stored: %v", err)
		}
		for i, id := range []string{"u1", "u2"} { // canaries without a key never collide
			if err := s.Create(ctx, newCanary(id, t0.Add(time.Duration(2+i)*time.Second)), []byte("src")); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Create(ctx, keyed("k3", "other", t0.Add(5*time.Second)), []byte("src")); err != nil {
			t.Fatal(err)
		}
		c, err := s.GetByKey(ctx, "checkout/run-7@a1b2")
		if err != nil || c.ID != "k1" || c.Key != "checkout/run-7@a1b2" || c.Asked == nil || c.Asked.Lifetime != 30*time.Minute {
			t.Fatalf("get by key: %+v %v", c, err)
		}
		for _, k := range []string{"", "CHECKOUT/RUN-7@A1B2", "checkout/run-7"} {
			if _, err := s.GetByKey(ctx, k); !errors.Is(err, analysis.ErrNotFound) {
				t.Errorf("get by key %q: want ErrNotFound, got %v", k, err)
			}
		}
		if _, err := s.Update(ctx, "k1", func(c *analysis.Canary) ([]analysis.Action, error) {
			c.Key = "stolen"
			c.Status, c.EndedAt, c.UpdatedAt = analysis.StatusFail, &t0, t0
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		if c, err := s.GetByKey(ctx, "checkout/run-7@a1b2"); err != nil || c.ID != "k1" || c.Key != "checkout/run-7@a1b2" || c.Status != analysis.StatusFail {
			t.Errorf("after a mutation that changed the key: %+v %v", c, err)
		}
		if _, err := s.GetByKey(ctx, "stolen"); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("a mutation bound a new key: %v", err)
		}
		for _, tc := range []struct {
			name string
			q    analysis.ListQuery
			want string
		}{
			{"by key", analysis.ListQuery{Key: "checkout/run-7@a1b2", Limit: 10}, "k1"},
			{"by key and its status", analysis.ListQuery{Key: "checkout/run-7@a1b2", Status: analysis.StatusFail, Limit: 10}, "k1"},
			{"by key and another status", analysis.ListQuery{Key: "checkout/run-7@a1b2", Status: analysis.StatusRunning, Limit: 10}, ""},
			{"by key after its place", analysis.ListQuery{Key: "other", Limit: 10, After: &analysis.Cursor{Created: analysis.CreatedNanos(t0.Add(5 * time.Second)), ID: "k3"}}, ""},
			{"by key before its place", analysis.ListQuery{Key: "other", Limit: 10, After: &analysis.Cursor{Created: analysis.CreatedNanos(t0.Add(6 * time.Second)), ID: "a"}}, "k3"},
			{"unknown key", analysis.ListQuery{Key: "nope", Limit: 10}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, err := s.ListPage(ctx, tc.q)
				if err != nil || ids(p.Canaries) != tc.want || p.Next != nil {
					t.Errorf("page %q next %v err %v, want %q", ids(p.Canaries), p.Next, err, tc.want)
				}
			})
		}
		if reopen != nil {
			s.Close()
			s = reopen(t)
		}
		defer s.Close()
		if c, err := s.GetByKey(ctx, "other"); err != nil || c.ID != "k3" {
			t.Errorf("after reopen: %+v %v", c, err)
		}
		// Retention deletes k1 (ended at t0): its key is free again.
		del, err := s.DeleteEnded(ctx, t0.Add(time.Hour), 10)
		if err != nil || ids(del) != "k1" {
			t.Fatalf("delete ended: %s %v", ids(del), err)
		}
		if _, err := s.GetByKey(ctx, "checkout/run-7@a1b2"); !errors.Is(err, analysis.ErrNotFound) {
			t.Errorf("key of a deleted canary: want ErrNotFound, got %v", err)
		}
		if err := s.Create(ctx, keyed("k4", "checkout/run-7@a1b2", t0.Add(time.Hour)), []byte("src")); err != nil {
			t.Errorf("create with a freed key: %v", err)
		}
	})

	t.Run("concurrent creates with one key", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			go func() {
				c := newCanary(fmt.Sprintf("race%d", i), t0)
				c.Key = "same"
				errs <- s.Create(ctx, c, []byte("src"))
			}()
		}
		created, refused := 0, 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				created++
			case errors.Is(err, analysis.ErrKeyExists):
				refused++
			default:
				t.Errorf("create: %v", err)
			}
		}
		all, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if created != 1 || refused != n-1 || len(all) != 1 {
			t.Errorf("%d created, %d refused, %d stored; want 1, %d, 1", created, refused, len(all), n-1)
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
