package guard

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
)

// With a shared store, a replica resumes another's unfinished action only once that
// replica is dead: never while it is alive (it would fire twice), and then under the
// same idempotency key, the action ending once.
func TestAdoptOnlyDeadReplicasActions(t *testing.T) {
	var mu sync.Mutex
	alive := map[string]bool{"a": true, "b": true}
	isAlive := func(_ context.Context, r string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return alive[r], nil
	}
	rc := newReceiver(t)
	src := configFor(rc, envOpts{})
	e := &env{t: t, rc: rc, src: src, replica: "a", alive: isAlive}
	e = envAtWith(t, e)

	// a plans a failed canary's actions and fires them; the receiver holds the first.
	hold, held := make(chan struct{}), make(chan struct{})
	rc.mu.Lock()
	rc.hold, rc.held = hold, held
	rc.mu.Unlock()
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	e.g.OnVerdict(context.Background(), c, act)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the receiver")
	}
	rc.mu.Lock()
	heldKey := rc.got[0].key
	rc.mu.Unlock()
	var firing *Actuation
	for _, a := range e.actuations(c.ID) {
		if a.Key == heldKey && a.State == StateFiring {
			firing = a
		}
	}
	if firing == nil || firing.Owner != "a" {
		t.Fatalf("the held action: %+v", firing)
	}

	// b, on the same store, starts while a is alive: it leaves a's action alone.
	b, err := New(Options{Store: e.g.store, Canaries: e.st, Config: e.cfg, Logger: zaptest.NewLogger(t),
		Metrics: NewMetrics(prometheus.NewRegistry()), Clock: e.clock, Replica: "b", Alive: isAlive, AdoptEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	rep, err := b.Recover(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resumed != 0 || rep.Abandoned != 0 {
		t.Fatalf("b resumed a live replica's actions: %+v", rep)
	}
	if got := e.actuations(c.ID)[firing.Actuator]; got.State != StateFiring || got.Owner != "a" || got.Attempts != 1 {
		t.Fatalf("after b's start: %+v", got)
	}

	// a dies: b adopts the action and fires it again under its key.
	mu.Lock()
	alive["a"] = false
	mu.Unlock()
	rep, err = b.resumeActions(e.ctx(), b.setup.Load(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// a fires its actions at once, so besides the held one another may still be in
	// flight (unfinished) when a dies: b adopts every unfinished one, each exactly once.
	adopted := 0
	for _, a := range e.actuations(c.ID) {
		if a.Owner == "b" {
			adopted++
		}
	}
	if rep.Resumed < 1 || rep.Resumed != adopted || e.actuations(c.ID)[firing.Actuator].Owner != "b" {
		t.Fatalf("b after a died: %+v, %d actions now b's (the held one among them: %v)", rep, adopted,
			e.actuations(c.ID)[firing.Actuator].Owner == "b")
	}
	if err := b.Idle(e.ctx()); err != nil {
		t.Fatal(err)
	}
	got := e.actuations(c.ID)[firing.Actuator]
	if got.State != StateSucceeded || got.Owner != "b" || got.Attempts != 2 {
		t.Errorf("adopted action: %+v", got)
	}
	ds := 0
	for _, d := range rc.deliveries("/") {
		if d.key == firing.Key {
			ds++
		}
	}
	if ds != 2 || rc.appliedTimes(firing.Key) != 1 {
		t.Errorf("%d deliveries under %s, applied %d times; want 2 (a's, held, and b's), applied once", ds, firing.Key, rc.appliedTimes(firing.Key))
	}
	// a's attempt ends late: its outcome does not overwrite b's.
	close(hold)
	released = true
	e.idle()
	if got := e.actuations(c.ID)[firing.Actuator]; got.State != StateSucceeded || got.Attempts != 2 || got.Owner != "b" {
		t.Errorf("after a's late outcome: %+v", got)
	}
}
