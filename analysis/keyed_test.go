package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

func keyedReg(key string) analysis.Registration {
	return analysis.Registration{
		Name: "web", Analysis: "basic", Key: key,
		Baseline: map[string]string{"track": "baseline", "signal": "ok"},
		Canary:   map[string]string{"track": "canary", "signal": "ok", "version": "v2"},
	}
}

// RegisterByKey is the entry point the integrations (Flagger's webhooks) call: Created,
// then Existing for the same registration, Conflict with the first differing field for
// another; a repeat after retention deleted the canary creates a new one.
func TestRegisterByKey(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	first, out, err := h.sched.RegisterByKey(ctx, keyedReg("flagger:prod/web@5d8f"))
	if err != nil || out != analysis.Created || first.Key != "flagger:prod/web@5d8f" {
		t.Fatalf("first: %v %v %+v", out, err, first)
	}
	again, out, err := h.sched.RegisterByKey(ctx, keyedReg("flagger:prod/web@5d8f"))
	if err != nil || out != analysis.Existing || again.ID != first.ID {
		t.Errorf("repeat: %v %v %+v", out, err, again)
	}
	// Register (the old entry point) keeps the promise too.
	if c, err := h.sched.Register(ctx, keyedReg("flagger:prod/web@5d8f")); err != nil || c.ID != first.ID {
		t.Errorf("Register with the key: %+v %v", c, err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(r *analysis.Registration)
		field string
	}{
		{"canary version", func(r *analysis.Registration) { r.Canary["version"] = "v3" }, "canary.version"},
		{"baseline variable removed", func(r *analysis.Registration) { delete(r.Baseline, "signal") }, "baseline.signal"},
		{"shared variable added", func(r *analysis.Registration) { r.Vars = map[string]string{"app": "web"} }, "vars.app"},
		{"lifetime given", func(r *analysis.Registration) { r.Lifetime = 5 * time.Minute }, "lifetime"},
		{"start given", func(r *analysis.Registration) { r.Start = time.Now() }, "start"},
		{"end given", func(r *analysis.Registration) { r.End = time.Now() }, "end"},
		{"thresholds given", func(r *analysis.Registration) { r.Thresholds = &analysis.Thresholds{Pass: 90, Marginal: 50} }, "thresholds"},
		{"dry run", func(r *analysis.Registration) { r.DryRun = true }, "dry_run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := keyedReg("flagger:prod/web@5d8f")
			tc.edit(&r)
			c, out, err := h.sched.RegisterByKey(ctx, r)
			var ke *analysis.KeyConflictError
			if out != analysis.Conflict || !errors.As(err, &ke) || ke.Field != tc.field || ke.ID != first.ID || c == nil || c.ID != first.ID {
				t.Errorf("got %v %v %+v, want Conflict on %s", out, err, c, tc.field)
			}
		})
	}
	// A bad key is refused before anything is read or stored.
	if _, _, err := h.sched.RegisterByKey(ctx, keyedReg("bad key")); !isInputOn(err, "key") {
		t.Errorf("bad key: %v", err)
	}

	// Ended and deleted by retention: the key is free, a repeat creates anew.
	if _, err := h.sched.Abort(ctx, first.ID, "", false); err != nil {
		t.Fatal(err)
	}
	if c, out, err := h.sched.RegisterByKey(ctx, keyedReg("flagger:prod/web@5d8f")); err != nil || out != analysis.Existing || c.Status != analysis.StatusAborted {
		t.Errorf("after abort: %v %v %+v", out, err, c)
	}
	if n, err := h.sched.DeleteEnded(ctx, h.clock.Now().Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("delete ended: %d %v", n, err)
	}
	c, out, err := h.sched.RegisterByKey(ctx, keyedReg("flagger:prod/web@5d8f"))
	if err != nil || out != analysis.Created || c.ID == first.ID {
		t.Errorf("after retention: %v %v %+v", out, err, c)
	}
}

// Concurrent RegisterByKey calls with one key store one canary, and the losers' running
// slots are given back: with max_running_per_analysis 2, a second key still registers.
func TestRegisterByKeyConcurrent(t *testing.T) {
	h := newHarness(t)
	h.stop()
	h.cfg.Server.MaxRunningPerAnalysis = 2
	h.start()
	const n = 12
	var wg sync.WaitGroup
	outs := make([]analysis.Outcome, n)
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			c, out, err := h.sched.RegisterByKey(context.Background(), keyedReg("race"))
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			outs[i], ids[i] = out, c.ID
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if outs[i] == analysis.Created {
			created++
		}
		if ids[i] != ids[0] {
			t.Errorf("call %d: canary %s, call 0: %s", i, ids[i], ids[0])
		}
	}
	all, err := h.sched.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if created != 1 || len(all) != 1 {
		t.Errorf("%d created, %d stored; want 1 and 1", created, len(all))
	}
	if _, out, err := h.sched.RegisterByKey(t.Context(), keyedReg("second")); err != nil || out != analysis.Created {
		t.Errorf("a second key under the cap of 2: %v %v", out, err)
	}
}

// Two schedulers on one store (two replicas on one PostgreSQL database) share no lock:
// the store's key index alone makes their concurrent registrations one canary, and the
// loser answers Existing with the winner's canary.
func TestRegisterByKeyTwoSchedulers(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	var scheds []*analysis.Scheduler
	for range 2 {
		s := analysis.NewScheduler(analysis.Options{Store: st, Clock: newFakeClock(), Logger: zaptest.NewLogger(t), Limits: analysis.LimitsOf(cfg.Server)})
		s.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"fake": &fakeProvider{}}})
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop(context.Background()) })
		scheds = append(scheds, s)
	}
	for round := range 20 {
		key := fmt.Sprint("round-", round)
		var wg sync.WaitGroup
		var outs [2]analysis.Outcome
		var ids [2]string
		for i, s := range scheds {
			wg.Go(func() {
				c, out, err := s.RegisterByKey(context.Background(), keyedReg(key))
				if err != nil {
					t.Errorf("%s, scheduler %d: %v", key, i, err)
					return
				}
				outs[i], ids[i] = out, c.ID
			})
		}
		wg.Wait()
		if ids[0] != ids[1] || outs[0] == outs[1] {
			t.Errorf("%s: outcomes %v, canaries %v; want one Created, one Existing, one canary", key, outs, ids)
		}
	}
	if all, _ := st.List(t.Context(), ""); len(all) != 20 {
		t.Errorf("%d canaries stored, want 20", len(all))
	}
}

func isInputOn(err error, field string) bool {
	var ie *analysis.InputError
	return errors.As(err, &ie) && ie.Field == field
}
