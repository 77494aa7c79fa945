package guard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/config"
)

// maxBackoff caps the wait between attempts.
const maxBackoff = time.Minute

func isResolve(r *Actuation) bool { return strings.HasPrefix(r.Trigger, triggerResolve) }

// fire makes one attempt of the action key: claim it (and check the breaker and the
// cooldown) in one transaction, act outside any transaction, record the outcome in a
// second one. Between the two the action is "firing": a crash there leaves it for
// Recover, which fires it again with the same idempotency key (or abandons it when the
// actuator says resume: skip).
func (g *Guard) fire(ctx context.Context, key string) {
	s := g.setup.Load()
	rec, b, stopped, err := g.claim(s, key)
	if err != nil {
		// Left as it was (pending), nothing fired: try the claim again later (and Recover
		// fires it at the next start if canaryd stops first).
		retry := time.Second
		g.log.Error("claim action; retrying", zap.String("key", key), zap.Duration("in", retry), zap.Error(err))
		g.fireAt(key, retry)
		return
	}
	if stopped != nil {
		g.notFired(stopped)
		return
	}
	if rec == nil {
		return
	}
	at := g.attempt(ctx, b, rec)
	if at.err != nil && ctx.Err() != nil {
		// canaryd is stopping: the attempt stays "firing" and Recover decides at the
		// next start, exactly as after a crash.
		g.log.Warn("attempt interrupted by shutdown", zap.String("key", key), zap.Int("attempt", rec.Attempts))
		return
	}
	out, err := g.recordOutcome(ctx, s, b, rec, at)
	if err != nil {
		// Only when canaryd is stopping with the store still failing: the action stays
		// firing and Recover retries it with the same idempotency key.
		g.log.Error("record outcome: giving up at shutdown; the action stays firing and is fired again at the next start",
			zap.String("key", key), zap.Error(err))
		return
	}
	g.afterAttempt(b, rec, at, out)
}

// claim moves a pending action to firing, counting the attempt, in one transaction with
// the breaker's and the cooldown's checks of a first attempt. It returns the claimed
// action and its actuator, or the action the checks stopped (or whose actuator is gone)
// as recorded, or neither when the action is not pending (approved twice, fired by
// Recover already, …).
func (g *Guard) claim(s *setup, key string) (rec *Actuation, b built, stopped *Actuation, err error) {
	now := g.now()
	err = g.update(func(tx Tx) error {
		rec, stopped = nil, nil
		r, err := tx.Actuation(key)
		if err != nil {
			return err
		}
		if r.State != StatePending {
			return nil
		}
		bb, ok := s.acts[r.Actuator]
		if !ok {
			return g.endUnfired(tx, r, &stopped, StateFailed, fmt.Sprintf("actuator %q is not in the current config", r.Actuator), now)
		}
		if r.Attempts == 0 && !isResolve(r) {
			st, why, err := g.checkSafety(tx, s, r, bb.entry, now)
			if err != nil {
				return err
			}
			if st != "" {
				return g.endUnfired(tx, r, &stopped, st, why, now)
			}
		}
		r.Attempts++
		r.State, r.UpdatedAt, r.NextAttemptAt, r.Owner = StateFiring, now, nil, g.o.Replica
		rec, b = r, bb
		return tx.PutActuation(r)
	})
	return rec, b, stopped, err
}

// endUnfired records r as ended in state st without firing, and sets *stopped to it.
func (g *Guard) endUnfired(tx Tx, r *Actuation, stopped **Actuation, st State, why string, now time.Time) error {
	r.State, r.Error, r.DoneAt, r.UpdatedAt = st, why, &now, now
	*stopped = r
	if err := tx.PutActuation(r); err != nil {
		return err
	}
	return tx.AppendAudit(r.entry(now, KindAction, Actor{Name: "canaryd"}))
}

// notFired counts and logs an action the claim stopped.
func (g *Guard) notFired(r *Actuation) {
	g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(r.State)).Inc()
	switch r.State {
	case StateRefused:
		g.m.BreakerRefusals.WithLabelValues(r.Actuator).Inc()
	case StateSuppressed:
		g.m.CooldownSuppressions.WithLabelValues(r.Actuator).Inc()
	}
	g.log.Warn("action not fired", zap.String("key", r.Key), zap.String("state", string(r.State)), zap.String("why", r.Error))
}

// attemptResult is what one attempt did.
type attemptResult struct {
	req      actuators.Request
	rendered bool // req is the rendered request (rendering succeeded)
	res      actuators.Result
	err      error
	took     time.Duration
	// applied: an earlier attempt was found to have taken effect (actuators.Lookup), so
	// this one sent nothing; lookupErr is why the receiver could not be asked, when it
	// could not (the attempt was sent anyway).
	applied   bool
	lookupErr error
}

// attempt renders and acts once, outside any transaction. An attempt after the first
// of an actuator that can look its earlier attempts up (actuators.Lookup) asks first:
// the previous one may have taken effect with its answer lost (a timeout, or canaryd
// killed before it recorded the outcome), and a receiver that ignores the idempotency
// key would apply it twice.
func (g *Guard) attempt(ctx context.Context, b built, rec *Actuation) attemptResult {
	var at attemptResult
	req, rerr := b.act.Render(rec.Event)
	t0 := time.Now() // real time: this measures the receiver, not the schedule
	if rerr == nil {
		at.req, at.rendered = req, true
		if l, ok := b.act.(actuators.Lookup); ok && rec.Attempts > 1 {
			res, found, err := l.Applied(ctx, rec.Event)
			switch {
			case err != nil:
				at.lookupErr = err
				g.log.Warn("look up an earlier attempt: failed; sending again", zap.String("key", rec.Key),
					zap.Int("attempt", rec.Attempts), zap.Error(err))
			case found:
				at.res, at.applied = res, true
			}
		}
		if !at.applied {
			at.res, at.err = b.act.Act(ctx, rec.Event)
		}
	} else {
		at.err = fmt.Errorf("render: %w", rerr) // final: the template or the event is wrong
	}
	at.took = time.Since(t0)
	g.m.AttemptDuration.WithLabelValues(rec.Actuator, rec.Type).Observe(at.took.Seconds())
	if at.err != nil && at.res == (actuators.Result{}) && ctx.Err() == nil {
		at.res = actuators.ResultOf(at.err)
	}
	return at
}

// outcome is what recording an attempt decided.
type outcome struct {
	// final is the action when it is done (succeeded or failed for good).
	final *Actuation
	// retryIn is the wait before the next attempt, when there is one.
	retryIn time.Duration
	now     time.Time
}

// recordOutcome writes an attempt's outcome (and what the next step is) with its audit
// entry in one transaction. The attempt happened: its outcome must reach the store, or a
// restart would fire it again. A failed write (a full disk) is retried until it succeeds;
// meanwhile the action counts in PendingOutcomes and /readyz says not ready.
func (g *Guard) recordOutcome(ctx context.Context, s *setup, b built, rec *Actuation, at attemptResult) (outcome, error) {
	var out outcome
	err := g.writeOutcome(ctx, rec.Key, func(tx Tx) error {
		out = outcome{now: g.now()}
		now := out.now
		r, err := tx.Actuation(rec.Key)
		if err != nil {
			return err
		}
		if r.State != StateFiring || r.Attempts != rec.Attempts {
			return nil
		}
		if at.rendered {
			r.Request = &at.req
		}
		r.Status, r.Output, r.Error, r.UpdatedAt = at.res.Status, at.res.Output, "", now
		switch {
		case at.err == nil:
			r.State = StateSucceeded
			if err := g.trackOpen(tx, b, r, now); err != nil {
				return err
			}
		case actuators.IsRetryable(at.err) && r.Attempts < r.MaxAttempts:
			r.State = StatePending
			out.retryIn = backoff(time.Duration(s.cfg.Actuation.Backoff), r.Attempts, actuators.RetryAfterOf(at.err))
			next := now.Add(out.retryIn)
			r.NextAttemptAt = &next
		default:
			r.State = StateFailed
		}
		if at.err != nil {
			r.Error = at.err.Error()
		}
		if r.State.Final() {
			r.DoneAt = &now
			out.final = r
		}
		if err := tx.PutActuation(r); err != nil {
			return err
		}
		e := r.entry(now, KindAction, Actor{Name: "canaryd"})
		e.Seconds = at.took.Seconds()
		if r.State == StatePending {
			e.Outcome = "retrying"
			e.Reason = fmt.Sprintf("attempt %d of %d failed; next in %s", r.Attempts, r.MaxAttempts, out.retryIn.Round(time.Millisecond))
		}
		switch {
		case at.applied:
			e.Reason = fmt.Sprintf("an earlier attempt took effect (its answer was lost): attempt %d sent nothing", r.Attempts)
		case at.lookupErr != nil:
			why := fmt.Sprintf("could not check whether an earlier attempt took effect (%v): attempt %d sent it again, so it may be applied twice", at.lookupErr, r.Attempts)
			e.Reason = strings.TrimPrefix(e.Reason+"; "+why, "; ")
		}
		return tx.AppendAudit(e)
	})
	return out, err
}

// afterAttempt counts and logs a recorded attempt, and queues the retry.
func (g *Guard) afterAttempt(b built, rec *Actuation, at attemptResult, out outcome) {
	result := "success"
	switch {
	case at.applied:
		result = "already_applied"
	case at.err != nil && out.retryIn > 0:
		result = "retry"
	case at.err != nil:
		result = "failure"
	}
	g.m.Attempts.WithLabelValues(rec.Actuator, rec.Type, result).Inc()
	log := g.log.With(zap.String("key", rec.Key), zap.String("actuator", rec.Actuator), zap.Int("attempt", rec.Attempts),
		zap.Int("status", at.res.Status), zap.Duration("took", at.took))
	switch final := out.final; {
	case final != nil:
		if c, ok := b.act.(actuators.Completion); ok {
			c.Forget(final.Event) // the store knows now; the marker has done its job
		}
		g.m.Actions.WithLabelValues(final.Actuator, final.Type, string(final.State)).Inc()
		g.m.VerdictToAction.WithLabelValues(final.Actuator, string(final.State)).Observe(out.now.Sub(final.VerdictAt).Seconds())
		if final.State == StateSucceeded {
			log.Info("action succeeded")
		} else {
			log.Error("action failed", zap.Error(at.err))
		}
	case out.retryIn > 0:
		log.Warn("attempt failed; retrying", zap.Duration("in", out.retryIn), zap.Error(at.err))
		g.fireAt(rec.Key, out.retryIn)
	}
}

// checkSafety applies the breaker and the cooldown to a first attempt and, when it may
// fire, records it in the service's history. It returns the state that stops it, if any.
func (g *Guard) checkSafety(tx Tx, s *setup, r *Actuation, e *config.Actuator, now time.Time) (State, string, error) {
	if e.Breaker.Max == 0 && e.Cooldown == 0 && e.Notification {
		return "", "", nil
	}
	items, err := tx.History(r.Service, now.Add(-longestWindow(s)), now.Add(-longestWindow(s)))
	if err != nil {
		return "", "", err
	}
	if e.Breaker.Max > 0 {
		window := time.Duration(e.Breaker.Window)
		n := 0
		for _, it := range items {
			if it.Actuator == r.Actuator && it.Time.After(now.Add(-window)) {
				n++
			}
		}
		if n >= e.Breaker.Max {
			return StateRefused, fmt.Sprintf("circuit breaker: %s already acted %d times on service %q in the last %s (breaker.max %d)",
				r.Actuator, n, r.Service, window, e.Breaker.Max), nil
		}
	}
	// An on_start action announces a deploy; it changes nothing a cooldown protects (two
	// rollbacks of one service), so it neither waits for one nor starts one.
	start := r.Trigger == TriggerStart
	if e.Cooldown > 0 && !start {
		for _, it := range items {
			if it.Canary != r.CanaryID && !it.Notification && it.Time.After(now.Add(-e.Cooldown)) {
				return StateSuppressed, fmt.Sprintf("cooldown: service %q had an action (%s, canary %s) %s ago; cooldown is %s",
					r.Service, it.Actuator, it.Canary, now.Sub(it.Time).Round(time.Second), e.Cooldown), nil
			}
		}
	}
	return "", "", tx.AddHistory(r.Service, Fired{Time: now, Actuator: r.Actuator, Canary: r.CanaryID, Notification: e.Notification || start})
}

// longestWindow is how far back the history must reach for the current config.
func longestWindow(s *setup) time.Duration {
	d := time.Hour
	for _, b := range s.acts {
		d = max(d, time.Duration(b.entry.Breaker.Window), b.entry.Cooldown)
	}
	return max(d, time.Duration(s.cfg.Actuation.Breaker.Window), time.Duration(s.cfg.Actuation.Cooldown))
}

// trackOpen remembers what a resolvable actuator opened, and forgets what a resolve
// closed.
func (g *Guard) trackOpen(tx Tx, b built, r *Actuation, now time.Time) error {
	if _, ok := b.act.(actuators.Resolvable); !ok {
		return nil
	}
	if r.Event.Action == actuators.ActionResolve {
		return tx.DeleteOpen(r.Service, r.Actuator, r.Event.DedupKey)
	}
	return tx.PutOpen(r.Service, r.Actuator, r.Event.DedupKey, OpenIncident{Canary: r.CanaryID, Key: r.Key, Time: now})
}

// backoff is the wait before attempt n+1: base doubled per attempt with ±20% jitter,
// at most maxBackoff, and at least what the receiver asked for.
func backoff(base time.Duration, attempt int, hint time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return max(d, hint)
}

// Store write retries: a failed write is tried again after storeRetryDelay(n).
const (
	storeRetryBase = 50 * time.Millisecond
	storeRetryMax  = 5 * time.Second
)

// storeRetryDelay is the wait before the (n+1)th try of a store write.
func storeRetryDelay(n int) time.Duration {
	d := storeRetryBase
	for i := 1; i < n && d < storeRetryMax; i++ {
		d *= 2
	}
	return min(d, storeRetryMax)
}

// writeOutcome runs fn in a write transaction until it commits. Between failures the
// key is in g.pending (PendingOutcomes, the pending-outcomes gauge, /readyz); memory stays
// bounded because each firing worker holds at most one outcome. It gives up only once
// ctx is cancelled (a hard stop) and one more try has failed.
func (g *Guard) writeOutcome(ctx context.Context, key string, fn func(Tx) error) error {
	err := g.update(fn)
	if err == nil {
		return nil
	}
	g.pendingMu.Lock()
	g.pending[key] = struct{}{}
	g.m.PendingOutcomes.Set(float64(len(g.pending)))
	g.pendingMu.Unlock()
	defer func() {
		g.pendingMu.Lock()
		delete(g.pending, key)
		g.m.PendingOutcomes.Set(float64(len(g.pending)))
		g.pendingMu.Unlock()
	}()
	for n := 1; ; n++ {
		wait := storeRetryDelay(n)
		g.log.Error("record outcome: store write failed; retrying", zap.String("key", key), zap.Int("try", n),
			zap.Duration("in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return g.update(fn) // one last try on the way out
		case <-t.C:
		}
		if err = g.update(fn); err == nil {
			g.log.Info("record outcome: written after store errors", zap.String("key", key), zap.Int("tries", n+1))
			return nil
		}
	}
}
