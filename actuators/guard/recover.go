package guard

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

// RecoverReport says what Recover found.
type RecoverReport struct {
	// Resumed are actions found pending or firing and queued again; Abandoned are those
	// found firing whose actuator says resume: skip.
	Resumed   int
	Abandoned int
	// Planned are canaries that ended without their actions planned (canaryd died
	// between storing the verdict and planning) and were planned now; Stale those that
	// ended before actuation.recover_window and were recorded as skipped.
	Planned int
	Stale   int
	// Started are canaries whose on_start actions were not planned (canaryd died between
	// storing the registration and planning) and were planned now; StaleStarts those
	// registered before actuation.recover_window, recorded as skipped.
	Started     int
	StaleStarts int
	// Awaiting is how many actions wait for approval.
	Awaiting int
}

// Recover is called once at start, after Start: it resumes the actions a crash or a
// shutdown left unfinished (with the same idempotency keys) and plans the canaries that
// ended without their actions planned. Calling it again is harmless.
func (g *Guard) Recover(ctx context.Context) (RecoverReport, error) {
	s := g.setup.Load()
	now := g.now()
	rep, err := g.resumeActions(ctx, s, now)
	if err != nil {
		return rep, err
	}
	all, err := g.cs.List(ctx, "")
	if err != nil {
		return rep, fmt.Errorf("guard: recover: list canaries: %w", err)
	}
	// Starts first: a canary's on_start goes out before its end's actions.
	if err := g.planLostStarts(ctx, all, s, now, &rep); err != nil {
		return rep, err
	}
	if err := g.planLost(ctx, all, s, now, &rep); err != nil {
		return rep, err
	}
	if err := g.Sweep(ctx); err != nil {
		return rep, err
	}
	g.log.Info("recovered", zap.Int("resumed", rep.Resumed), zap.Int("abandoned", rep.Abandoned),
		zap.Int("planned", rep.Planned), zap.Int("stale", rep.Stale), zap.Int("started", rep.Started), zap.Int("stale_starts", rep.StaleStarts),
		zap.Int("awaiting_approval", rep.Awaiting))
	return rep, nil
}

// resume is an action to fire again, in (0: at once).
type resume struct {
	key string
	in  time.Duration
}

// resumeActions finds the actions a crash or a shutdown left pending or firing, records
// what happens to each (in one transaction), and queues them again. With a shared store
// (Options.Alive) it leaves alone those of live replicas, and of this one: they are in
// their owner's queue.
func (g *Guard) resumeActions(ctx context.Context, s *setup, now time.Time) (RecoverReport, error) {
	owners, err := g.liveOwners(ctx)
	if err != nil {
		return RecoverReport{}, fmt.Errorf("guard: recover actions: %w", err)
	}
	var rep RecoverReport
	var toFire []resume
	var abandoned []*Actuation
	err = g.update(func(tx Tx) error {
		toFire, abandoned, rep = nil, nil, RecoverReport{}
		var changed, adopted []*Actuation
		err := eachUnfinished(tx, func(r *Actuation) error {
			if r.State == StateAwaitingApproval {
				rep.Awaiting++
				return nil
			}
			if r.State.Final() || owners.alive(r.Owner) {
				return nil
			}
			if g.o.Alive != nil {
				r.Owner = g.o.Replica
			}
			switch r.State {
			case StatePending:
				in := time.Duration(0)
				if r.NextAttemptAt != nil {
					in = r.NextAttemptAt.Sub(now)
				}
				toFire = append(toFire, resume{r.Key, in})
				if g.o.Alive != nil {
					adopted = append(adopted, r)
				}
			case StateFiring:
				if g.interrupted(s, r, now) {
					toFire = append(toFire, resume{r.Key, 0})
				} else {
					abandoned = append(abandoned, r)
				}
				changed = append(changed, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range changed {
			if err := tx.PutActuation(r); err != nil {
				return err
			}
			if err := tx.AppendAudit(r.entry(now, KindRecover, Actor{Name: "canaryd"})); err != nil {
				return err
			}
		}
		for _, r := range adopted {
			if err := tx.PutActuation(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("guard: recover actions: %w", err)
	}
	g.m.AwaitingApproval.Set(float64(rep.Awaiting))
	for _, r := range abandoned {
		g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(StateAbandoned)).Inc()
		g.log.Error("action abandoned after a restart", zap.String("key", r.Key), zap.Int("attempt", r.Attempts))
	}
	rep.Abandoned = len(abandoned)
	rep.Resumed = len(toFire)
	for _, f := range toFire {
		g.fireAt(f.key, f.in)
	}
	return rep, nil
}

// liveOwners says which owners of unfinished actions are alive (this replica among them),
// read before the transaction that adopts the others; nil with one process (every owner
// is gone). An owner it does not know claimed its action since: alive.
type liveOwners map[string]bool

func (o liveOwners) alive(owner string) bool {
	if o == nil || owner == "" {
		return false
	}
	ok, known := o[owner]
	return ok || !known
}

func (g *Guard) liveOwners(ctx context.Context) (liveOwners, error) {
	if g.o.Alive == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	err := g.store.View(ctx, func(tx Tx) error {
		return eachUnfinished(tx, func(r *Actuation) error {
			if r.State != StateAwaitingApproval && r.Owner != "" {
				seen[r.Owner] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	out := liveOwners{g.o.Replica: true}
	for owner := range seen {
		if owner == g.o.Replica {
			continue
		}
		ok, err := g.o.Alive(ctx, owner)
		if err != nil {
			return nil, err
		}
		out[owner] = ok
	}
	return out, nil
}

// interrupted decides what happens to an action found firing (the attempt may or may not
// have reached the receiver): it is pending again, to fire with the same idempotency key
// (true), or abandoned when its actuator says resume: skip and no completion marker says
// it finished (false).
func (g *Guard) interrupted(s *setup, r *Actuation, now time.Time) bool {
	r.UpdatedAt = now
	bb, ok := s.acts[r.Actuator]
	c, hasMarker := bb.act.(actuators.Completion)
	completed := ok && hasMarker && c.Completed(r.Event)
	if ok && bb.entry.Resume == config.ResumeSkip && !completed {
		r.State, r.DoneAt = StateAbandoned, &now
		r.Error = fmt.Sprintf("attempt %d was interrupted by a restart; its outcome is unknown and %s says resume: skip — check by hand", r.Attempts, r.Actuator)
		return false
	}
	r.State = StatePending
	r.Error = fmt.Sprintf("attempt %d was interrupted by a restart; firing again with the same idempotency key", r.Attempts)
	if completed {
		r.Error = fmt.Sprintf("attempt %d was interrupted by a restart; its completion marker exists, so it is recorded as done without running again", r.Attempts)
	}
	if r.Attempts >= r.MaxAttempts {
		// The interrupted attempt is not held against the actuator.
		r.MaxAttempts = r.Attempts + 1
	}
	return true
}

// planLost plans the canaries that ended while their plan was lost (canaryd died between
// storing the verdict and planning), or records them as stale past recover_window.
func (g *Guard) planLost(ctx context.Context, all []*analysis.Canary, s *setup, now time.Time, rep *RecoverReport) (err error) {
	window := time.Duration(s.cfg.Actuation.RecoverWindow)
	defer func() {
		if err == nil {
			err = g.planLostRecoveries(ctx, all, window, now, rep)
		}
	}()
	for _, c := range all {
		if !c.Status.Final() {
			continue
		}
		planned, err := g.isPlanned(c.ID)
		if err != nil {
			return fmt.Errorf("guard: recover: %w", err)
		}
		if planned {
			continue
		}
		ended := c.UpdatedAt
		if c.EndedAt != nil {
			ended = *c.EndedAt
		}
		if now.Sub(ended) > window {
			a, _ := g.analysisOf(ctx, c) // only for the service's name in the audit entry
			if err := g.markStale(c, s.serviceVarOf(a), ended, window, now); err != nil {
				return err
			}
			rep.Stale++
			continue
		}
		act, err := g.finalAction(ctx, c)
		if err != nil {
			return err
		}
		if err := g.plan(ctx, planJob{canary: c, action: act, actor: Actor{Name: "canaryd (recovered)"}}); err != nil {
			return fmt.Errorf("guard: recover: %w", err)
		}
		rep.Planned++
	}
	return nil
}

// finalAction is the action the store recorded when c ended (the last one with its final
// status), or one rebuilt from the canary.
func (g *Guard) finalAction(ctx context.Context, c *analysis.Canary) (analysis.Action, error) {
	acts, err := g.cs.Actions(ctx, c.ID)
	if err != nil {
		return analysis.Action{}, fmt.Errorf("guard: recover: actions of %s: %w", c.ID, err)
	}
	for i := len(acts) - 1; i >= 0; i-- {
		if acts[i].Status == c.Status {
			return acts[i], nil
		}
	}
	a := analysis.Action{CanaryID: c.ID, Kind: analysis.ActionVerdict, Status: c.Status, Reason: c.Reason, Actuate: !c.DryRun}
	if c.EndedAt != nil {
		a.Time = *c.EndedAt
	}
	return a, nil
}

// markStale records a canary that ended too long ago to act on.
func (g *Guard) markStale(c *analysis.Canary, serviceVar string, ended time.Time, window time.Duration, now time.Time) error {
	return g.update(func(tx Tx) error {
		if done, err := tx.Planned(c.ID); err != nil || done {
			return err
		}
		if err := tx.MarkPlanned(c.ID, PlannedRecord{Time: now, Trigger: triggerOf(c.Status), Kind: kindStale}); err != nil {
			return err
		}
		return tx.AppendAudit(&Entry{Time: now, Kind: KindRecover, Who: "canaryd", Canary: c.ID, CanaryName: c.Name,
			Analysis: c.Analysis, Service: ServiceOf(c, serviceVar), Trigger: triggerOf(c.Status),
			Outcome: string(StateSkipped),
			Reason:  fmt.Sprintf("ended at %s without its actions planned, more than recover_window (%s) ago: not actuated", ended.UTC().Format(time.RFC3339), window)})
	})
}

// planLostStarts plans the on_start actions of canaries registered while their plan was
// lost (canaryd died between storing the registration and planning), or records them as
// stale when they were registered more than recover_window ago. Canaries whose analysis
// has no on_start list are left alone: nothing was ever to be planned for them.
func (g *Guard) planLostStarts(ctx context.Context, all []*analysis.Canary, s *setup, now time.Time, rep *RecoverReport) error {
	window := time.Duration(s.cfg.Actuation.RecoverWindow)
	for _, c := range all {
		a, err := g.analysisOf(ctx, c)
		if err != nil || len(listFor(a, TriggerStart)) == 0 {
			continue // an unreadable analysis is reported when the canary ends
		}
		marker := markerOf(c.ID, TriggerStart)
		planned, err := g.isPlanned(marker)
		if err != nil {
			return fmt.Errorf("guard: recover: %w", err)
		}
		if planned {
			continue
		}
		if now.Sub(c.CreatedAt) > window {
			err := g.update(func(tx Tx) error {
				if done, err := tx.Planned(marker); err != nil || done {
					return err
				}
				if err := tx.MarkPlanned(marker, PlannedRecord{Time: now, Trigger: TriggerStart, Kind: kindStale}); err != nil {
					return err
				}
				return tx.AppendAudit(&Entry{Time: now, Kind: KindRecover, Who: "canaryd", Canary: c.ID, CanaryName: c.Name,
					Analysis: c.Analysis, Service: ServiceOf(c, s.serviceVarOf(a)), Trigger: TriggerStart, Outcome: string(StateSkipped),
					Reason: fmt.Sprintf("registered at %s without its on_start actions planned, more than recover_window (%s) ago: not actuated",
						c.CreatedAt.UTC().Format(time.RFC3339), window)})
			})
			if err != nil {
				return fmt.Errorf("guard: recover: %w", err)
			}
			rep.StaleStarts++
			continue
		}
		if err := g.plan(ctx, planJob{canary: c, action: startAction(c), actor: Actor{Name: "canaryd (recovered)"}, trigger: TriggerStart}); err != nil {
			return fmt.Errorf("guard: recover: %w", err)
		}
		rep.Started++
	}
	return nil
}
