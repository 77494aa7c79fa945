package analysis_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

// fakeLeases holds what the test says; Renew fails while down.
type fakeLeases struct {
	mu         sync.Mutex
	held       []string
	acquire    bool
	down       bool
	renewals   int
	released   []string
	releaseAll int
}

func (f *fakeLeases) Acquire(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.acquire {
		f.held = append(f.held, id)
	}
	return f.acquire, nil
}

func (f *fakeLeases) Renew(context.Context) (analysis.LeaseState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewals++
	if f.down {
		return analysis.LeaseState{}, errors.New("database lost")
	}
	return analysis.LeaseState{Held: slices.Clone(f.held), Replicas: 2}, nil
}

func (f *fakeLeases) Release(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, id)
	return nil
}

func (f *fakeLeases) ReleaseAll(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseAll++
	return nil
}

func (f *fakeLeases) TTL() time.Duration { return 300 * time.Millisecond }

func (f *fakeLeases) set(fn func(f *fakeLeases)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

// waitRenewals waits for n more renewals (real time: leases do not follow the clock).
func (f *fakeLeases) waitRenewals(t *testing.T, n int) {
	t.Helper()
	f.mu.Lock()
	want := f.renewals + n
	f.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		got := f.renewals
		f.mu.Unlock()
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d renewals, want %d", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With leases, a scheduler judges only the canaries it holds: a canary another replica
// leases waits however late it is, and is judged (caught up) once held; a lease that
// cannot be renewed for a TTL (the database lost) stops the judging until a renewal
// succeeds; an ended canary's lease is released, and all of them at Stop.
func TestLeasesDecideWhoJudges(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	fl := &fakeLeases{}
	h := &harness{t: t, clock: newFakeClock(), path: filepath.Join(t.TempDir(), "canaryd.db"), prov: &fakeProvider{}, cfg: cfg, leases: fl}
	h.start()
	judged := func(id string) int { return len(h.get(id).Results) }

	// Registered here, leased by another replica (Acquire refused): not judged.
	c1 := h.register("ok", "ok")
	for range 40 {
		h.clock.Advance(10 * time.Second)
	}
	time.Sleep(50 * time.Millisecond)
	if n := judged(c1.ID); n != 0 {
		t.Fatalf("a canary another replica holds was judged %d times", n)
	}
	// Its lease comes to this replica: judged to its end.
	fl.set(func(f *fakeLeases) { f.held = []string{c1.ID} })
	h.until("c1 ends", h.ended(c1.ID))
	if d := h.get(c1.ID); d.Status != analysis.StatusPass || len(d.Results) != 4 {
		t.Fatalf("c1: %s, %d intervals", d.Status, len(d.Results))
	}
	fl.mu.Lock()
	rel := slices.Clone(fl.released)
	fl.mu.Unlock()
	if !slices.Contains(rel, c1.ID) {
		t.Errorf("c1's lease not released at its end: %v", rel)
	}

	// Leased at registration; then the database is lost for more than a TTL: no judging
	// until a renewal succeeds, and then the intervals that waited are judged.
	fl.set(func(f *fakeLeases) { f.acquire, f.held = true, nil })
	c2 := h.register("ok", "ok")
	h.until("c2's first interval", func() bool { return judged(c2.ID) >= 1 })
	fl.set(func(f *fakeLeases) { f.down = true })
	time.Sleep(fl.TTL() + 100*time.Millisecond)
	before := judged(c2.ID)
	for range 40 {
		h.clock.Advance(10 * time.Second)
	}
	time.Sleep(50 * time.Millisecond)
	if n := judged(c2.ID); n != before {
		t.Fatalf("judged %d intervals with the lease lapsed (from %d)", n, before)
	}
	fl.set(func(f *fakeLeases) { f.down = false })
	fl.waitRenewals(t, 1)
	h.until("c2 ends", h.ended(c2.ID))
	if d := h.get(c2.ID); d.Status != analysis.StatusPass || len(d.Results) != 4 {
		t.Fatalf("c2: %s, %d intervals", d.Status, len(d.Results))
	}
	h.stop()
	if fl.releaseAll != 1 {
		t.Errorf("ReleaseAll at stop: %d calls", fl.releaseAll)
	}
}
