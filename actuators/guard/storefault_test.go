package guard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canaryd/canaryd/analysis"
)

// fullDisk makes the guard's write transactions fail as bbolt reports a full disk, while
// full is set.
func fullDisk(g *Guard) *atomic.Bool {
	var full atomic.Bool
	g.failWrite = func() error {
		if full.Load() {
			return fmt.Errorf("write: %w", syscall.ENOSPC)
		}
		return nil
	}
	return &full
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An attempt whose outcome the store refuses (a full disk) is not left "firing" for a
// restart to fire again: the outcome is retried until written, counted as store errors,
// and shown as a pending outcome meanwhile. Once written, a restart fires nothing.
func TestOutcomeWriteRetriedUntilWritten(t *testing.T) {
	e := newEnv(t, envOpts{})
	storeErrors := prometheus.NewCounter(prometheus.CounterOpts{Name: "store_errors_total"})
	e.g.o.StoreErrors = storeErrors
	full := fullDisk(e.g)
	hold, held := make(chan struct{}), make(chan struct{})
	e.rc.mu.Lock()
	e.rc.hold, e.rc.held = hold, held
	e.rc.mu.Unlock()

	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusPass}) // on_pass: [notify]
	e.g.OnVerdict(context.Background(), c, act)
	<-held // claimed and at the receiver
	full.Store(true)
	close(hold)
	waitFor(t, "a pending outcome", func() bool { return e.g.PendingOutcomes() == 1 })
	time.Sleep(300 * time.Millisecond) // a few retries
	if a := e.actuations(c.ID)["notify"]; a == nil || a.State != StateFiring {
		t.Fatalf("while the disk is full: %+v", a)
	}
	if v := value(t, e.g.m.PendingOutcomes); v != 1 {
		t.Errorf("pending outcomes gauge = %v, want 1", v)
	}
	n := value(t, e.g.m.StoreErrors)
	if n < 3 || value(t, storeErrors) != n {
		t.Errorf("store errors: guard %v, shared %v; want ≥ 3 and equal", n, value(t, storeErrors))
	}

	full.Store(false)
	e.idle()
	if got := e.g.PendingOutcomes(); got != 0 {
		t.Errorf("pending outcomes after the disk is back: %d", got)
	}
	if v := value(t, e.g.m.PendingOutcomes); v != 0 {
		t.Errorf("pending outcomes gauge = %v, want 0", v)
	}
	a := e.actuations(c.ID)["notify"]
	if a == nil || a.State != StateSucceeded || a.Attempts != 1 {
		t.Fatalf("after the disk is back: %+v", a)
	}
	outcomes := 0
	for _, en := range e.audit(Query{Canary: c.ID, Kind: "action", Limit: 100}) {
		if en.Outcome == string(StateSucceeded) {
			outcomes++
		}
	}
	if outcomes != 1 {
		t.Errorf("%d succeeded entries in the audit log, want 1", outcomes)
	}

	// A restart finds it done and fires nothing.
	e.close()
	e = envAt(t, e.path, e.src, e.rc, nil)
	rep, err := e.g.Recover(e.ctx())
	if err != nil || rep.Resumed != 0 {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	e.idle()
	if ds := e.rc.deliveries("/notify"); len(ds) != 1 {
		t.Errorf("%d deliveries, want 1", len(ds))
	}
}

// The figure: the disk toggled full and free 40 times while 40 canaries' 120
// actions fire. Every action ends succeeded, none is delivered twice, and a restart
// fires none again.
func TestDiskToggledFullAndFree(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.rc.mu.Lock()
	e.rc.delay = 30 * time.Millisecond // the disk changes while attempts are in flight
	e.rc.mu.Unlock()
	full := fullDisk(e.g)
	rng := rand.New(rand.NewPCG(13, 12))
	var ids []string
	const toggles = 40
	for i := range toggles {
		// The canary's verdict is stored on a healthy disk (the scheduler retries its
		// own writes); the guard's writes meet the toggling one.
		c, act := e.end(canaryOpts{app: fmt.Sprintf("svc-%d", i), status: analysis.StatusFail})
		ids = append(ids, c.ID)
		e.g.OnVerdict(context.Background(), c, act)
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		full.Store(true)
		time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		full.Store(false)
	}
	e.idle()
	errs := value(t, e.g.m.StoreErrors)

	e.close()
	e = envAt(t, e.path, e.src, e.rc, nil)
	rep, err := e.g.Recover(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	e.idle()
	notDone := 0
	for _, id := range ids {
		acts := e.actuations(id)
		if len(acts) != 3 {
			t.Errorf("%s: %d actions, want 3", id, len(acts))
		}
		for name, a := range acts {
			if a.State != StateSucceeded {
				notDone++
				t.Errorf("%s %s: %s", id, name, a.State)
			}
		}
	}
	e.rc.mu.Lock()
	dups := 0
	for _, n := range e.rc.dups {
		dups += n
	}
	e.rc.mu.Unlock()
	if dups != 0 || rep.Resumed != 0 {
		t.Errorf("%d duplicate deliveries, %d actions resumed by the restart; want 0", dups, rep.Resumed)
	}
	t.Logf("%d disk toggles, %d store errors retried: %d actions not succeeded, %d duplicates after a restart", toggles, int(errs), notDone, dups)
}
