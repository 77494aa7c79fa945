package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
)

// Preflighter is an actuator whose kind can check, changing nothing, that it could act
// on a canary: a kind opts in with this one method, which answers
// actuators.ErrNoPreflight when its entry configures no check. ctx carries the deadline
// (the entry's preflight_timeout, within the registration's request); the check must
// stop at it.
type Preflighter interface {
	Preflight(ctx context.Context, e actuators.Event) (actuators.Result, error)
}

// Preflight runs the preflight check of every actuator a lists, at once, for the canary
// c about to be registered (its id set, not yet stored), and returns their results in
// the order of the lists. Each check is bounded by its entry's preflight_timeout and by
// ctx (the request). A check that cannot be built for the canary (a missing variable)
// is an *analysis.InputError naming the field; a failed check, when the analysis says
// preflight: refuse, is an *analysis.PreflightError. Every check run is in the audit
// log (with the canary's id when it is registered). It is the scheduler's
// analysis.PreflightCheck.
func (g *Guard) Preflight(ctx context.Context, a *config.Analysis, c *analysis.Canary) ([]analysis.PreflightResult, error) {
	if !a.Actuators() {
		return nil, nil
	}
	s := g.setup.Load()
	service := serviceVar(c, s.serviceVarOf(a))
	type check struct {
		name    string
		trigger string
		b       built
		p       Preflighter
	}
	var checks []check
	for _, h := range a.Hooks() {
		trigger := h.Key
		for _, name := range h.Actuators {
			b, ok := s.acts[name]
			p, pre := b.act.(Preflighter)
			if !ok || !pre || slices.ContainsFunc(checks, func(k check) bool { return k.name == name }) {
				continue
			}
			checks = append(checks, check{name: name, trigger: trigger, b: b, p: p})
		}
	}
	results := make([]analysis.PreflightResult, len(checks))
	errs := make([]error, len(checks))
	ran := make([]bool, len(checks))
	var wg sync.WaitGroup
	for i, k := range checks {
		ev := actuators.PreflightEvent(actuators.Event{
			Actuator: k.name, DedupKey: c.ID, ID: c.ID, Name: c.Name, Analysis: a.Name,
			Status: string(analysis.StatusRunning), Trigger: k.trigger, Service: service,
			Baseline: c.Baseline, Canary: c.Canary, Vars: c.Vars, Link: s.link + c.ID, Time: g.now(), DryRun: c.DryRun,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, k.b.entry.PreflightTimeout)
			defer cancel()
			start := time.Now()
			res, err := k.p.Preflight(cctx, ev)
			r := analysis.PreflightResult{Actuator: k.name, Type: k.b.entry.Type, OK: err == nil, Target: res.Target,
				Status: res.Status, Output: actuators.Truncate(res.Output, s.cfg.Actuation.OutputLimit), Seconds: time.Since(start).Seconds()}
			switch {
			case errors.Is(err, actuators.ErrNoPreflight):
				return
			case err != nil && cctx.Err() != nil && ctx.Err() == nil:
				r.Error = fmt.Sprintf("%v (preflight_timeout %s)", err, k.b.entry.PreflightTimeout)
			case err != nil:
				r.Error = err.Error()
			}
			results[i], errs[i], ran[i] = r, err, true
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("preflight: %w", err) // the client went away: nothing to record
	}
	var out []analysis.PreflightResult
	failed := false
	for i := range checks {
		if !ran[i] {
			continue
		}
		var re *actuators.PreflightRenderError
		if errors.As(errs[i], &re) {
			return nil, &analysis.InputError{Field: fieldOf(re.Err, c), Msg: fmt.Sprintf("actuator %s's preflight cannot be run for this canary: %v", checks[i].name, re.Err)}
		}
		failed = failed || !results[i].OK
		out = append(out, results[i])
	}
	refused := failed && a.Preflight == config.PreflightRefuse
	g.auditPreflight(ctx, a, c, service, out, refused)
	if refused {
		return out, &analysis.PreflightError{Analysis: a.Name, Results: out}
	}
	return out, nil
}

// auditPreflight records each check run. A refused canary is never stored: its entries
// name it by name only.
func (g *Guard) auditPreflight(ctx context.Context, a *config.Analysis, c *analysis.Canary, service string, rs []analysis.PreflightResult, refused bool) {
	if len(rs) == 0 {
		return
	}
	who := identity.From(ctx, "canaryd")
	id := c.ID
	if refused {
		id = ""
	}
	err := g.update(func(tx Tx) error {
		for _, r := range rs {
			e := &Entry{Time: g.now(), Kind: KindPreflight, Who: who.Name, Remote: who.Remote, Canary: id, CanaryName: c.Name,
				Analysis: a.Name, Service: service, Actuator: r.Actuator, Type: r.Type, Outcome: "ok", Status: r.Status,
				Output: r.Output, Error: r.Error, Seconds: r.Seconds, Reason: r.Target}
			switch {
			case !r.OK && refused:
				e.Outcome = "refused"
			case !r.OK:
				e.Outcome = "warn"
			}
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The results are on the canary (or in the 409) whatever happens here.
		g.log.Error("preflight results not in the audit log", zap.String("canary", c.ID), zap.Error(err))
	}
}
