package guard

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
)

var (
	_ analysis.Rollbacks         = (*Guard)(nil)
	_ analysis.RecoveryActuation = (*Guard)(nil)
)

// recoveryMarker is the planned marker of a canary's recovery outcome: its audit entry
// and escalation are written once, like its end.
func recoveryMarker(id string) string { return id + "/recovery" }

// FailActions reports a canary's on_fail actions to the recovery watch: done once the
// canary is planned and every one of them is final (a held one waits for approval).
func (g *Guard) FailActions(ctx context.Context, c *analysis.Canary) (bool, []analysis.RollbackAction, error) {
	var planned bool
	var recs []*Actuation
	err := g.store.View(ctx, func(tx Tx) error {
		var err error
		if planned, err = tx.Planned(c.ID); err != nil || !planned {
			return err
		}
		recs, err = tx.CanaryActuations(c.ID)
		return err
	})
	if err != nil || !planned {
		return false, nil, err
	}
	s := g.setup.Load()
	var out []analysis.RollbackAction
	for _, r := range recs {
		if r.Trigger != TriggerFail {
			continue
		}
		if !r.State.Final() {
			return false, nil, nil
		}
		b, ok := s.acts[r.Actuator]
		out = append(out, analysis.RollbackAction{Actuator: r.Actuator, State: string(r.State), Notification: ok && b.entry.Notification,
			Error: r.Error, DoneAt: r.DoneAt})
	}
	return true, out, nil
}

// OnRecovery records a recovery watch's outcome in the audit log and, when it is
// not_recovered, the analysis' on_not_recovered actions, in one transaction under the
// canary's recovery marker (so once, ever: Recover does it after a crash in between),
// then fires them.
func (g *Guard) OnRecovery(ctx context.Context, c *analysis.Canary) {
	if err := g.planRecovery(ctx, c, Actor{Name: "scheduler"}); err != nil {
		g.log.Error("recovery outcome: planning failed; Recover plans it at the next start", zap.String("canary", c.ID), zap.Error(err))
	}
}

func (g *Guard) planRecovery(ctx context.Context, c *analysis.Canary, who Actor) error {
	rec := c.Recovery
	if rec == nil || !rec.Outcome.Final() {
		return nil
	}
	a, aerr := g.analysisOf(ctx, c)
	if aerr != nil && ctx.Err() != nil {
		return aerr
	}
	s := g.setup.Load()
	now := g.now()
	service := ServiceOf(c, s.serviceVarOf(a))
	dry := c.DryRun || s.cfg.Actuation.DryRun
	ev := actuators.RecoveryEvent{Outcome: string(rec.Outcome), Reason: rec.Reason, RolledBackAt: rec.RolledBackAt, DecidedAt: rec.DecidedAt}
	for _, rb := range rec.Rollbacks {
		if rb.Failed() {
			ev.RollbackErrors = append(ev.RollbackErrors, rb.Actuator+": "+rb.Error)
		}
	}
	var recs []*Actuation
	if rec.Outcome == analysis.RecoveryNotRecovered {
		results, err := g.cs.Intervals(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("intervals of %s: %w", c.ID, err)
		}
		base := actuators.Event{
			Action: actuators.ActionTrigger, DedupKey: c.ID,
			ID: c.ID, Name: c.Name, Analysis: c.Analysis, Status: string(c.Status), Verdict: string(c.Verdict),
			Score: c.Score, Reason: "not recovered: " + rec.Reason, Kind: string(analysis.ActionVerdict), Trigger: TriggerNotRecovered,
			Cause: "recovery", Service: service, Baseline: c.Baseline, Canary: c.Canary, Vars: c.Vars,
			Failing: failingOf(results), Link: s.link + c.ID, Time: decidedAt(rec, now), Start: c.Start, DryRun: dry, Recovery: ev,
		}
		act := analysis.Action{CanaryID: c.ID, Kind: analysis.ActionVerdict, Status: c.Status, Actuate: !c.DryRun}
		for _, name := range listFor(a, TriggerNotRecovered) {
			// Never held for approval: the watch already found the rollback did not help.
			recs = append(recs, g.newActuation(s, base, c.ID+"/"+TriggerNotRecovered+"/"+name, name, act, dry, false, now))
		}
	}
	var created []*Actuation
	var toFire []string
	err := g.update(func(tx Tx) error {
		created, toFire = nil, nil
		marker := recoveryMarker(c.ID)
		if done, err := tx.Planned(marker); err != nil || done {
			return err
		}
		if err := tx.MarkPlanned(marker, PlannedRecord{Time: now, Trigger: TriggerNotRecovered, Kind: KindRecovery}); err != nil {
			return err
		}
		e := &Entry{Time: now, Kind: KindRecovery, Who: who.Name, Remote: who.Remote, Canary: c.ID, CanaryName: c.Name,
			Analysis: c.Analysis, Service: service, Outcome: string(rec.Outcome), Reason: rec.Reason}
		if rec.Outcome == analysis.RecoveryNotRecovered {
			e.Trigger = TriggerNotRecovered
			if len(recs) == 0 {
				e.Reason += " (no actuators in on_not_recovered)"
			}
		}
		if aerr != nil {
			e.Error = fmt.Sprintf("no escalation: the canary's analysis cannot be read: %v", aerr)
		}
		if err := tx.AppendAudit(e); err != nil {
			return err
		}
		for _, r := range recs {
			if _, err := tx.Actuation(r.Key); err == nil {
				continue
			}
			if err := tx.PutActuation(r); err != nil {
				return err
			}
			ae := r.entry(now, KindAction, Actor{Name: "canaryd"})
			ae.Reason = planReason(r)
			if err := tx.AppendAudit(ae); err != nil {
				return err
			}
			created = append(created, r)
			if r.State == StatePending {
				toFire = append(toFire, r.Key)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("persist recovery of %s: %w", c.ID, err)
	}
	for _, r := range created {
		if r.State.Final() {
			g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(r.State)).Inc()
		}
	}
	if len(created) > 0 {
		g.log.Info("escalation planned", zap.String("canary", c.ID), zap.String("service", service), zap.Int("actions", len(created)),
			zap.Int("to_fire", len(toFire)), zap.Bool("dry_run", dry))
	}
	for _, k := range toFire {
		g.enqueueFire(k)
	}
	return nil
}

func decidedAt(r *analysis.Recovery, now time.Time) time.Time {
	if r.DecidedAt != nil {
		return *r.DecidedAt
	}
	return now
}

// planLostRecoveries does, at start, what OnRecovery did not get to for watches that
// ended before a crash: their audit entry and escalation (within recover_window; older
// ones get the entry only).
func (g *Guard) planLostRecoveries(ctx context.Context, all []*analysis.Canary, window time.Duration, now time.Time, rep *RecoverReport) error {
	for _, c := range all {
		if c.Recovery == nil || !c.Recovery.Outcome.Final() {
			continue
		}
		planned, err := g.isPlanned(recoveryMarker(c.ID))
		if err != nil {
			return fmt.Errorf("guard: recover: %w", err)
		}
		if planned {
			continue
		}
		cc := *c
		if now.Sub(decidedAt(c.Recovery, now)) > window {
			r := *c.Recovery
			cc.Recovery = &r
			if r.Outcome == analysis.RecoveryNotRecovered {
				// Too old to page anyone: recorded, not fired.
				cc.DryRun = true
			}
			rep.Stale++
		} else {
			rep.Planned++
		}
		if err := g.planRecovery(ctx, &cc, Actor{Name: "canaryd (recovered)"}); err != nil {
			return fmt.Errorf("guard: recover: %w", err)
		}
	}
	return nil
}
