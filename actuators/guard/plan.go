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
	return a.Hook(trigger)
}

// markerOf is the id a plan's planned marker is kept under: the canary's id for its end
// (as it always was), "<id>/<trigger>" for a hook that fires before it (on_start), so
// each is planned once, ever, apart from the others.
func markerOf(id, trigger string) string {
	if trigger == TriggerStart {
		return id + "/" + trigger
	}
	return id
}

// startAction is what a canary's start is planned with: its registration.
func startAction(c *analysis.Canary) analysis.Action {
	return analysis.Action{CanaryID: c.ID, Time: c.CreatedAt, Kind: ActionStart, Status: analysis.StatusRunning,
		Reason: "canary registered", Actuate: true}
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

// plan persists a final canary's actions (the intents), or a new canary's on_start
// ones, with their audit entries in one transaction, then queues the ones to fire. Each
// is planned once: a second call (OnVerdict racing Recover) finds the marker and does
// nothing.
func (g *Guard) plan(ctx context.Context, j planJob) error {
	if done, err := g.isPlanned(markerOf(j.canary.ID, j.trigger)); err != nil || done {
		return err
	}
	p, err := g.preparePlan(ctx, j)
	if err != nil {
		return err
	}
	if p.trigger == TriggerStart && len(p.recs) == 0 && p.aerr == nil {
		// No on_start list: nothing to record (a canary's end is recorded either way).
		return nil
	}
	res, err := g.persistPlan(ctx, p)
	if err != nil {
		return fmt.Errorf("persist plan of %s: %w", p.c.ID, err)
	}
	if res.planned {
		return nil
	}
	g.afterPlan(p, res)
	return nil
}

// canaryPlan is a canary's plan before it is persisted.
type canaryPlan struct {
	j       planJob
	c       *analysis.Canary
	act     analysis.Action
	s       *setup
	trigger string
	service string
	dry     bool
	// aerr is why the canary's analysis cannot be read (nothing is planned then).
	aerr error
	base actuators.Event
	recs []*Actuation
	now  time.Time
}

// planResult is what persisting a plan did.
type planResult struct {
	created []*Actuation
	toFire  []string
	// planned: the canary was planned already (nothing was written).
	planned bool
}

// preparePlan reads what the plan needs (the analysis snapshot, the intervals) and
// decides each action of the trigger's list.
func (g *Guard) preparePlan(ctx context.Context, j planJob) (*canaryPlan, error) {
	c, act := j.canary, j.action
	if act.Status == "" {
		act.Status = c.Status
	}
	trigger := j.trigger
	if trigger == "" {
		trigger = triggerOf(act.Status)
	}
	p := &canaryPlan{j: j, c: c, act: act, s: g.setup.Load(), trigger: trigger}
	a, aerr := g.analysisOf(ctx, c)
	if aerr != nil && ctx.Err() != nil {
		return nil, aerr
	}
	p.aerr = aerr
	results, err := g.cs.Intervals(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("intervals of %s: %w", c.ID, err)
	}
	p.now = g.now()
	p.service = ServiceOf(c, p.s.serviceVarOf(a))
	p.dry = c.DryRun || p.s.cfg.Actuation.DryRun
	p.base = actuators.Event{
		Action: actuators.ActionTrigger, DedupKey: c.ID,
		ID: c.ID, Name: c.Name, Analysis: c.Analysis, Status: string(c.Status), Verdict: string(c.Verdict),
		Score: c.Score, Reason: c.Reason, Kind: string(act.Kind), Trigger: p.trigger, Cause: string(act.Cause),
		Service: p.service, Baseline: c.Baseline, Canary: c.Canary, Vars: c.Vars,
		Failing: failingOf(results), Link: p.s.link + c.ID, Time: verdictTime(act, c, p.now), Start: c.Start, DryRun: p.dry,
	}
	if p.trigger == TriggerStart {
		// What the canary was when it started, even when Recover plans it after its end.
		p.base.Status, p.base.Verdict, p.base.Score, p.base.Reason, p.base.Failing = string(analysis.StatusRunning), "", nil, act.Reason, nil
	}
	requireApproval := a != nil && a.RequireApproval
	for _, name := range listFor(a, p.trigger) {
		p.recs = append(p.recs, g.newActuation(p.s, p.base, c.ID+"/"+p.trigger+"/"+name, name, act, p.dry, requireApproval, p.now))
	}
	return p, nil
}

// verdictTime is when the canary ended: its action's time, else its end, else now.
func verdictTime(act analysis.Action, c *analysis.Canary, now time.Time) time.Time {
	switch {
	case !act.Time.IsZero():
		return act.Time
	case c.EndedAt != nil && !c.EndedAt.IsZero():
		return *c.EndedAt
	}
	return now
}

// persistPlan writes the planned marker, the canary's end and every new action with its
// audit entry, in one transaction.
func (g *Guard) persistPlan(ctx context.Context, p *canaryPlan) (planResult, error) {
	var res planResult
	c, now := p.c, p.now
	err := g.store.Update(ctx, func(tx Tx) error {
		res = planResult{}
		marker := markerOf(c.ID, p.trigger)
		if done, err := tx.Planned(marker); err != nil || done {
			res.planned = done
			return err
		}
		if err := tx.MarkPlanned(marker, PlannedRecord{Time: now, Trigger: p.trigger, Kind: kindOf(p.act.Kind)}); err != nil {
			return err
		}
		if err := tx.AppendAudit(p.endEntry()); err != nil {
			return err
		}
		all := slices.Clone(p.recs)
		if p.trigger == TriggerPass && (p.act.Actuate || p.dry) {
			resolves, err := g.resolves(tx, p)
			if err != nil {
				return err
			}
			all = append(all, resolves...)
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
			res.created = append(res.created, r)
			if r.State == StatePending {
				res.toFire = append(res.toFire, r.Key)
			}
		}
		return nil
	})
	return res, err
}

// endEntry is the audit entry of the canary's end (or of its start, for on_start).
func (p *canaryPlan) endEntry() *Entry {
	c := p.c
	e := &Entry{Time: p.now, Kind: kindOf(p.act.Kind), Who: p.j.actor.Name, Remote: p.j.actor.Remote, Canary: c.ID, CanaryName: c.Name,
		Analysis: c.Analysis, Service: p.service, Trigger: p.trigger, Outcome: string(c.Status), Reason: c.Reason}
	if p.trigger == TriggerStart {
		e.Outcome, e.Reason = string(analysis.StatusRunning), p.act.Reason
	}
	if p.aerr != nil {
		e.Error = fmt.Sprintf("no actions: the canary's analysis cannot be read: %v", p.aerr)
	} else if len(p.recs) == 0 {
		e.Reason += fmt.Sprintf(" (no actuators in %s)", p.trigger)
	}
	return e
}

// resolves are the actions that close what earlier failures of the service opened: a
// pass of the service resolves them.
func (g *Guard) resolves(tx Tx, p *canaryPlan) ([]*Actuation, error) {
	open, err := tx.OpenIncidents(p.service)
	if err != nil {
		return nil, err
	}
	var out []*Actuation
	for _, an := range slices.Sorted(maps.Keys(open)) {
		for _, dedup := range slices.Sorted(maps.Keys(open[an])) {
			ev := p.base
			ev.Action, ev.DedupKey = actuators.ActionResolve, dedup
			key := p.c.ID + "/" + triggerResolve + dedup + "/" + an
			r := g.newActuation(p.s, ev, key, an, p.act, p.dry, false, p.now)
			r.Trigger = triggerResolve + dedup
			r.Event.Trigger = r.Trigger
			out = append(out, r)
		}
	}
	return out, nil
}

// afterPlan counts and logs a persisted plan and queues its actions to fire.
func (g *Guard) afterPlan(p *canaryPlan, res planResult) {
	held := false
	for _, r := range res.created {
		held = held || r.State == StateAwaitingApproval
	}
	if !held && p.trigger != TriggerStart {
		// Decided at the verdict; a held action decides at its approval (decide).
		g.m.TimeToDecide.WithLabelValues(p.c.Analysis).Observe(p.base.Time.Sub(p.c.Start).Seconds())
	}
	for _, r := range res.created {
		switch {
		case r.State == StateAwaitingApproval:
			g.m.AwaitingApproval.Inc()
			g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(r.State)).Inc()
		case r.State.Final():
			g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(r.State)).Inc()
		}
	}
	g.log.Info("actions planned", zap.String("canary", p.c.ID), zap.String("trigger", p.trigger), zap.String("service", p.service),
		zap.Int("actions", len(res.created)), zap.Int("to_fire", len(res.toFire)), zap.Bool("dry_run", p.dry), zap.String("who", p.j.actor.Name))
	for _, k := range res.toFire {
		g.enqueueFire(k)
	}
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
		VerdictAt: ev.Time, CreatedAt: now, UpdatedAt: now, Event: ev, Owner: g.o.Replica,
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
