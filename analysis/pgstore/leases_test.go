package pgstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/pgstore/pgtest"
)

// Leases split the running canaries between live replicas by the database's clock: one
// holder at a time, taken over once the holder stops renewing, shared out evenly, and
// dropped when a canary ends.
func TestLeases(t *testing.T) {
	s := open(t, pgtest.Database(t))
	defer s.Close()
	ctx := t.Context()
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("c%d", i)
		ids = append(ids, id)
		if err := s.Create(ctx, &analysis.Canary{ID: id, AnalysisHash: "h", Status: analysis.StatusRunning,
			CreatedAt: time.Unix(int64(i), 0)}, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	const ttl = 600 * time.Millisecond
	a, b := s.Leases("replica-a", ttl), s.Leases("replica-b", ttl)
	renew := func(l *Leases) analysis.LeaseState {
		t.Helper()
		st, err := l.Renew(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	if ok, err := a.Acquire(ctx, "c0"); err != nil || !ok {
		t.Fatalf("a acquires c0: %v %v", ok, err)
	}
	if ok, err := b.Acquire(ctx, "c0"); err != nil || ok {
		t.Fatalf("b acquires a's live lease of c0: %v %v", ok, err)
	}
	if ok, err := a.Acquire(ctx, "c0"); err != nil || !ok {
		t.Fatalf("a acquires its own lease again: %v %v", ok, err)
	}
	// The expiry is the database's now() + TTL, whatever this process' clock says.
	var left time.Duration
	if err := s.pool.QueryRow(ctx, "SELECT extract(epoch FROM expires - now()) * 1e9 FROM leases WHERE canary_id = 'c0'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left <= 0 || left > ttl {
		t.Errorf("the lease expires %s after the database's now, want (0, %s]", left, ttl)
	}

	// Alone, a takes every running canary; b arrives and takes nothing held; a frees
	// what is over its share; b takes that.
	if st := renew(a); !slices.Equal(st.Held, ids) || st.Replicas != 1 || st.Running != 6 {
		t.Fatalf("a alone: %+v", st)
	}
	if st := renew(b); len(st.Held) != 0 || st.Replicas != 2 {
		t.Fatalf("b arrives: %+v", st)
	}
	if st := renew(a); len(st.Held) != 3 {
		t.Fatalf("a over its share: %+v", st)
	}
	stB := renew(b)
	if len(stB.Held) != 3 {
		t.Fatalf("b takes the freed leases: %+v", stB)
	}
	stA := renew(a)
	if both := slices.Sorted(slices.Values(append(slices.Clone(stA.Held), stB.Held...))); !slices.Equal(both, ids) {
		t.Fatalf("a holds %v, b %v: want every canary once", stA.Held, stB.Held)
	}
	if alive, err := b.Alive(ctx, "replica-a"); err != nil || !alive {
		t.Fatalf("a alive: %v %v", alive, err)
	}

	// An ended canary's lease is dropped at its holder's next renewal.
	if _, err := s.Update(ctx, stA.Held[0], func(c *analysis.Canary) ([]analysis.Action, error) {
		c.Status = analysis.StatusPass
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if st := renew(a); slices.Contains(st.Held, stA.Held[0]) || st.Running != 5 {
		t.Fatalf("after %s ended: %+v", stA.Held[0], st)
	}

	// a dies (stops renewing): until its TTL is over b takes nothing of a's; then all.
	if st := renew(b); len(st.Held) != 3 {
		t.Fatalf("b before a's leases expire: %+v", st)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	renew(b) // keeps b alive past the sleep
	st := renew(b)
	if len(st.Held) != 5 || st.Replicas != 1 {
		t.Fatalf("b after a's leases expired: %+v", st)
	}
	if alive, err := b.Alive(ctx, "replica-a"); err != nil || alive {
		t.Fatalf("a alive after its TTL: %v %v", alive, err)
	}
	if err := b.Release(ctx, st.Held[0]); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Acquire(ctx, st.Held[0]); err != nil || !ok {
		t.Fatalf("a released lease is free: %v %v", ok, err)
	}
}

// The running canaries per analysis, across every writer, for max_running_per_analysis.
func TestRunningByAnalysis(t *testing.T) {
	s := open(t, pgtest.Database(t))
	defer s.Close()
	for i, c := range []struct {
		analysis string
		status   analysis.Status
	}{{"web", analysis.StatusRunning}, {"web", analysis.StatusRunning}, {"web", analysis.StatusFail}, {"db", analysis.StatusRunning}} {
		if err := s.Create(t.Context(), &analysis.Canary{ID: fmt.Sprintf("c%d", i), Analysis: c.analysis, AnalysisHash: "h",
			Status: c.status}, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RunningByAnalysis(t.Context())
	if err != nil || len(got) != 2 || got["web"] != 2 || got["db"] != 1 {
		t.Fatalf("running by analysis: %v %v", got, err)
	}
}
