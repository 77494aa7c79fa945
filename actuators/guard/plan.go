package guard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
)

// triggerOf maps a final status to the analysis list that fires: an abort fires the
// fail list, a promotion the pass list.
func triggerOf(s analysis.Status) string {
	switch s {
	case analysis.StatusPass:
		return TriggerPass
	case analysis.StatusMarginal:
		return TriggerMarginal
	case analysis.StatusFail, analysis.StatusAborted:
		return TriggerFail
	case analysis.StatusError:
		return TriggerError
	}
	return ""
}

func listFor(a *config.Analysis, trigger string) []string {
	if a == nil {
		return nil
	}
	var names []string
	switch trigger {
	case TriggerPass:
		names = a.OnPass
	case TriggerMarginal:
		names = a.OnMarginal
	case TriggerFail:
		names = a.OnFail
	case TriggerError:
		names = a.OnError
	}
	// A name listed twice is one action: its key would be the same.
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// failingOf returns the last judged interval's failed and errored metrics, critical
// ones first, then failures before errors.
func failingOf(results []analysis.IntervalResult) []actuators.FailingMetric {
	if len(results) == 0 {
		return nil
	}
	last := results[0]
	for _, r := range results[1:] {
		if r.Index > last.Index {
			last = r
		}
	}
	var out []actuators.FailingMetric
	for _, m := range last.Metrics {
		if m.Failed() || m.Classification == judge.ClassError {
			out = append(out, actuators.FailingMetric{Name: m.Name, Group: m.Group, Classification: string(m.Classification), Critical: m.Critical, Reason: m.Reason})
		}
	}
	rank := func(f actuators.FailingMetric) int {
		r := 0
		if !f.Critical {
			r += 2
		}
		if f.Classification == string(judge.ClassError) {
			r++
		}
		return r
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func (g *Guard) analysisOf(ctx context.Context, c *analysis.Canary) (*config.Analysis, error) {
	return g.o.Analyses.Analysis(ctx, c)
}

func (g *Guard) isPlanned(id string) (bool, error) {
	var planned bool
	err := g.store.View(context.Background(), func(tx Tx) error {
		var err error
		planned, err = tx.Planned(id)
		return err
	})
	return planned, err
}

// plan persists a final canary's actions (the intents) with its audit entries in one
// transaction, then queues the ones to fire. A canary is planned once: a second call
// (OnVerdict racing Recover) finds the marker and does nothing.
func (g *Guard) plan(ctx context.Context, j planJob) error {
	c, act := j.canary, j.action
	if done, err := g.isPlanned(c.ID); err != nil || done {
		return err
	}
	if act.Status == "" {
		act.Status = c.Status
	}
	s := g.setup.Load()
	cfg := s.cfg
	trigger := triggerOf(act.Status)
	a, aerr := g.analysisOf(ctx, c)
	if aerr != nil && ctx.Err() != nil {
		return aerr
	}
	results, err := g.cs.Intervals(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("intervals of %s: %w", c.ID, err)
	}
	now := g.now()
	verdictAt := act.Time
	if verdictAt.IsZero() && c.EndedAt != nil {
		verdictAt = *c.EndedAt
	}
	if verdictAt.IsZero() {
		verdictAt = now
	}
	service := ServiceOf(c, s.serviceVarOf(a))
	dry := c.DryRun || cfg.Actuation.DryRun
	base := actuators.Event{
		Action: actuators.ActionTrigger, DedupKey: c.ID,
		ID: c.ID, Name: c.Name, Analysis: c.Analysis, Status: string(c.Status), Verdict: string(c.Verdict),
		Score: c.Score, Reason: c.Reason, Kind: string(act.Kind), Trigger: trigger, Cause: string(act.Cause),
		Service: service, Baseline: c.Baseline, Canary: c.Canary, Vars: c.Vars,
		Failing: failingOf(results), Link: s.link + c.ID, Time: verdictAt, DryRun: dry,
	}
	requireApproval := a != nil && a.RequireApproval
	var recs []*Actuation
	for _, name := range listFor(a, trigger) {
		recs = append(recs, g.newActuation(s, base, c.ID+"/"+trigger+"/"+name, name, act, dry, requireApproval, now))
	}

	var toFire []string
	var created []*Actuation
	planned := false
	err = g.store.Update(ctx, func(tx Tx) error {
		toFire, created, planned = nil, nil, false
		all := slices.Clone(recs)
		if done, err := tx.Planned(c.ID); err != nil || done {
			planned = done
			return err
		}
		if err := tx.MarkPlanned(c.ID, PlannedRecord{Time: now, Trigger: trigger, Kind: kindOf(act.Kind)}); err != nil {
			return err
		}
		ve := &Entry{Time: now, Kind: kindOf(act.Kind), Who: j.actor.Name, Remote: j.actor.Remote, Canary: c.ID, CanaryName: c.Name,
			Analysis: c.Analysis, Service: service, Trigger: trigger, Outcome: string(c.Status), Reason: c.Reason}
		if aerr != nil {
			ve.Error = fmt.Sprintf("no actions: the canary's analysis cannot be read: %v", aerr)
		} else if len(recs) == 0 {
			ve.Reason += fmt.Sprintf(" (no actuators in %s)", trigger)
		}
		if err := tx.AppendAudit(ve); err != nil {
			return err
		}
		if trigger == TriggerPass && (act.Actuate || dry) {
			// A pass of the service closes what earlier failures of it opened.
			open, err := tx.OpenIncidents(service)
			if err != nil {
				return err
			}
			for _, an := range slices.Sorted(maps.Keys(open)) {
				for _, dedup := range slices.Sorted(maps.Keys(open[an])) {
					ev := base
					ev.Action, ev.DedupKey = actuators.ActionResolve, dedup
					key := c.ID + "/" + triggerResolve + dedup + "/" + an
					r := g.newActuation(s, ev, key, an, act, dry, false, now)
					r.Trigger = triggerResolve + dedup
					r.Event.Trigger = r.Trigger
					all = append(all, r)
				}
			}
		}
		for _, r := range all {
			if _, err := tx.Actuation(r.Key); err == nil {
				continue
			} else if !errors.Is(err, ErrNoActuation) {
				return err
			}
			if err := tx.PutActuation(r); err != nil {
				return err
			}
			e := r.entry(now, KindAction, Actor{Name: "canaryd"})
			e.Reason = planReason(r)
			if err := tx.AppendAudit(e); err != nil {
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
		return fmt.Errorf("persist plan of %s: %w", c.ID, err)
	}
	if planned {
		return nil
	}
	for _, r := range created {
		switch {
		case r.State == StateAwaitingApproval:
			g.m.AwaitingApproval.Inc()
			g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(r.State)).Inc()
		case r.State.Final():
			g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(r.State)).Inc()
		}
	}
	g.log.Info("actions planned", zap.String("canary", c.ID), zap.String("trigger", trigger), zap.String("service", service),
		zap.Int("actions", len(created)), zap.Int("to_fire", len(toFire)), zap.Bool("dry_run", dry), zap.String("who", j.actor.Name))
	for _, k := range toFire {
		g.enqueueFire(k)
	}
	return nil
}

func planReason(r *Actuation) string {
	switch r.State {
	case StatePending:
		return "intent recorded; firing"
	case StateAwaitingApproval:
		return "held for approval (the analysis has require_approval)"
	case StateDryRun:
		return "dry run: would have fired"
	case StateSkipped:
		return "not fired: the canary ended with actuate=false"
	}
	return ""
}

// newActuation decides what to do with one actuator for one canary.
func (g *Guard) newActuation(s *setup, base actuators.Event, key, name string, act analysis.Action, dry, requireApproval bool, now time.Time) *Actuation {
	ev := base
	ev.Key, ev.Actuator = key, name
	r := &Actuation{
		Key: key, CanaryID: ev.ID, CanaryName: ev.Name, Analysis: ev.Analysis, Service: ev.Service,
		Trigger: ev.Trigger, Actuator: name, State: StatePending, MaxAttempts: 1,
		VerdictAt: ev.Time, CreatedAt: now, UpdatedAt: now, Event: ev,
	}
	b, ok := s.acts[name]
	if !ok {
		r.State, r.Error = StateFailed, fmt.Sprintf("actuator %q is not in the current config", name)
		r.DoneAt = &now
		return r
	}
	r.Type, r.MaxAttempts = b.entry.Type, b.entry.Attempts
	render := func() {
		req, err := b.act.Render(ev)
		if err != nil {
			r.Error = "render: " + err.Error()
			return
		}
		r.Request = &req
	}
	switch {
	case dry:
		r.State = StateDryRun
		render()
	case !act.Actuate:
		r.State = StateSkipped
	case requireApproval && (ev.Trigger == TriggerFail || ev.Trigger == TriggerError) && act.Kind == analysis.ActionVerdict && !b.entry.Notification:
		// An abort is already a human's decision; only the scheduler's verdicts wait.
		r.State = StateAwaitingApproval
		exp := now.Add(time.Duration(s.cfg.Actuation.ApprovalTimeout))
		r.ExpiresAt = &exp
		render() // so the approver sees what will run
	}
	if r.State.Final() {
		r.DoneAt = &now
	}
	return r
}

// entry is an audit entry about r.
func (r *Actuation) entry(now time.Time, kind EntryKind, who Actor) *Entry {
	return &Entry{
		Time: now, Kind: kind, Who: who.Name, Remote: who.Remote, Canary: r.CanaryID, CanaryName: r.CanaryName,
		Analysis: r.Analysis, Service: r.Service, Actuator: r.Actuator, Type: r.Type, Trigger: r.Trigger, Key: r.Key,
		Outcome: string(r.State), Attempt: r.Attempts, Request: r.Request, Status: r.Status, Output: r.Output, Error: r.Error,
	}
}
