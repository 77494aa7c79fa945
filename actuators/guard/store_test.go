package guard

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/canaryd/canaryd/analysis"
)

var errInjected = errors.New("injected commit failure")

// rollbackStore is a Store whose next Update runs fn to its end and then fails, so that
// the transaction is rolled back with everything fn wrote.
type rollbackStore struct {
	Store
	failNext atomic.Bool
}

func (s *rollbackStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.Store.Update(ctx, func(tx Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if s.failNext.CompareAndSwap(true, false) {
			return errInjected
		}
		return nil
	})
}

// The guard reaches its state only through its Store, and a plan is one transaction: the
// planned marker, the canary's end in the audit log and every intent appear together or
// not at all, and a plan after a failed one fires each action once.
func TestPlanIsOneStoreTransaction(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.close()
	rs := &rollbackStore{}
	e.wrap = func(s Store) Store { rs.Store = s; return rs }
	e.open(nil)
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	job := planJob{canary: c, action: act, actor: Actor{Name: "test"}}

	rs.failNext.Store(true)
	if err := e.g.plan(e.ctx(), job); !errors.Is(err, errInjected) {
		t.Fatalf("plan with a failing commit: %v", err)
	}
	if planned, err := e.g.isPlanned(c.ID); err != nil || planned {
		t.Errorf("rolled-back plan left the canary planned (%v, %v)", planned, err)
	}
	if es := e.audit(Query{Canary: c.ID, Limit: 100}); len(es) != 0 {
		t.Errorf("rolled-back plan left %d audit entries: %+v", len(es), es)
	}
	if acts := e.actuations(c.ID); len(acts) != 0 {
		t.Errorf("rolled-back plan left %d actions", len(acts))
	}

	if err := e.g.plan(e.ctx(), job); err != nil {
		t.Fatal(err)
	}
	e.idle()
	if planned, err := e.g.isPlanned(c.ID); err != nil || !planned {
		t.Errorf("planned = %v, %v", planned, err)
	}
	acts := e.actuations(c.ID)
	for _, name := range []string{"rollback", "notify", "page"} {
		if a := acts[name]; a == nil || a.State != StateSucceeded || a.Attempts != 1 {
			t.Errorf("%s: %+v", name, a)
		}
	}
	if rb := e.rc.deliveries("/rollback/"); len(rb) != 1 {
		t.Errorf("rollback delivered %d times, want 1", len(rb))
	}
	es := e.audit(Query{Canary: c.ID, Kind: kindOf(act.Kind), Limit: 100})
	if len(es) != 1 || es[0].Outcome != string(analysis.StatusFail) {
		t.Errorf("the canary's end in the audit log: %+v", es)
	}
}
