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
	now := g.now()
	var (
		rec     *Actuation
		b       built
		stopped *Actuation // refused, suppressed or unconfigured
	)
	err := g.update(func(tx Tx) error {
		rec, stopped = nil, nil
		r, err := tx.Actuation(key)
		if err != nil {
			return err
		}
		if r.State != StatePending {
			return nil // approved twice, fired by Recover already, …
		}
		bb, ok := s.acts[r.Actuator]
		if !ok {
			r.State, r.Error, r.DoneAt, r.UpdatedAt = StateFailed, fmt.Sprintf("actuator %q is not in the current config", r.Actuator), &now, now
			stopped = r
			if err := tx.PutActuation(r); err != nil {
				return err
			}
			return tx.AppendAudit(r.entry(now, KindAction, Actor{Name: "canaryd"}))
		}
		if r.Attempts == 0 && !isResolve(r) {
			st, why, err := g.checkSafety(tx, s, r, bb.entry, now)
			if err != nil {
				return err
			}
			if st != "" {
				r.State, r.Error, r.DoneAt, r.UpdatedAt = st, why, &now, now
				stopped = r
				if err := tx.PutActuation(r); err != nil {
					return err
				}
				return tx.AppendAudit(r.entry(now, KindAction, Actor{Name: "canaryd"}))
			}
		}
		r.Attempts++
		r.State, r.UpdatedAt, r.NextAttemptAt = StateFiring, now, nil
		rec, b = r, bb
		return tx.PutActuation(r)
	})
	if err != nil {
		// Left as it was (pending), nothing fired: try the claim again later (and Recover
		// fires it at the next start if canaryd stops first).
		retry := time.Second
		g.log.Error("claim action; retrying", zap.String("key", key), zap.Duration("in", retry), zap.Error(err))
		g.fireAt(key, retry)
		return
	}
	if stopped != nil {
		g.m.Actions.WithLabelValues(stopped.Actuator, stopped.Type, string(stopped.State)).Inc()
		switch stopped.State {
		case StateRefused:
			g.m.BreakerRefusals.WithLabelValues(stopped.Actuator).Inc()
		case StateSuppressed:
			g.m.CooldownSuppressions.WithLabelValues(stopped.Actuator).Inc()
		}
		g.log.Warn("action not fired", zap.String("key", key), zap.String("state", string(stopped.State)), zap.String("why", stopped.Error))
		return
	}
	if rec == nil {
		return
	}

	req, rerr := b.act.Render(rec.Event)
	t0 := time.Now() // real time: this measures the receiver, not the schedule
	var res actuators.Result
	aerr := rerr
	if rerr == nil {
		res, aerr = b.act.Act(ctx, rec.Event)
	} else {
		aerr = fmt.Errorf("render: %w", rerr) // final: the template or the event is wrong
	}
	took := time.Since(t0)
	g.m.AttemptDuration.WithLabelValues(rec.Actuator, rec.Type).Observe(took.Seconds())
	if aerr != nil && ctx.Err() != nil {
		// canaryd is stopping: the attempt stays "firing" and Recover decides at the
		// next start, exactly as after a crash.
		g.log.Warn("attempt interrupted by shutdown", zap.String("key", key), zap.Int("attempt", rec.Attempts))
		return
	}
	if aerr != nil && res == (actuators.Result{}) {
		res = actuators.ResultOf(aerr)
	}

	// The attempt happened: its outcome must reach the store, or a restart would fire it
	// again. A failed write (a full disk) is retried until it succeeds; meanwhile the
	// action counts in PendingOutcomes and /readyz says not ready.
	var retryIn time.Duration
	var final *Actuation
	err = g.writeOutcome(ctx, key, func(tx Tx) error {
		now = g.now()
		final, retryIn = nil, 0
		r, err := tx.Actuation(key)
		if err != nil {
			return err
		}
		if r.State != StateFiring || r.Attempts != rec.Attempts {
			return nil
		}
		if rerr == nil {
			r.Request = &req
		}
		r.Status, r.Output, r.Error, r.UpdatedAt = res.Status, res.Output, "", now
		switch {
		case aerr == nil:
			r.State = StateSucceeded
			if err := g.trackOpen(tx, b, r, now); err != nil {
				return err
			}
		case actuators.IsRetryable(aerr) && r.Attempts < r.MaxAttempts:
			r.State = StatePending
			retryIn = backoff(time.Duration(s.cfg.Actuation.Backoff), r.Attempts, actuators.RetryAfterOf(aerr))
			next := now.Add(retryIn)
			r.NextAttemptAt = &next
		default:
			r.State = StateFailed
		}
		if aerr != nil {
			r.Error = aerr.Error()
		}
		if r.State.Final() {
			r.DoneAt = &now
			final = r
		}
		if err := tx.PutActuation(r); err != nil {
			return err
		}
		e := r.entry(now, KindAction, Actor{Name: "canaryd"})
		e.Seconds = took.Seconds()
		if r.State == StatePending {
			e.Outcome = "retrying"
			e.Reason = fmt.Sprintf("attempt %d of %d failed; next in %s", r.Attempts, r.MaxAttempts, retryIn.Round(time.Millisecond))
		}
		return tx.AppendAudit(e)
	})
	if err != nil {
		// Only when canaryd is stopping with the store still failing: the action stays
		// firing and Recover retries it with the same idempotency key.
		g.log.Error("record outcome: giving up at shutdown; the action stays firing and is fired again at the next start",
			zap.String("key", key), zap.Error(err))
		return
	}
	result := "success"
	switch {
	case aerr != nil && retryIn > 0:
		result = "retry"
	case aerr != nil:
		result = "failure"
	}
	g.m.Attempts.WithLabelValues(rec.Actuator, rec.Type, result).Inc()
	log := g.log.With(zap.String("key", key), zap.String("actuator", rec.Actuator), zap.Int("attempt", rec.Attempts),
		zap.Int("status", res.Status), zap.Duration("took", took))
	switch {
	case final != nil:
		if c, ok := b.act.(actuators.Completion); ok {
			c.Forget(final.Event) // the store knows now; the marker has done its job
		}
		g.m.Actions.WithLabelValues(final.Actuator, final.Type, string(final.State)).Inc()
		g.m.VerdictToAction.WithLabelValues(final.Actuator, string(final.State)).Observe(now.Sub(final.VerdictAt).Seconds())
		if final.State == StateSucceeded {
			log.Info("action succeeded")
		} else {
			log.Error("action failed", zap.Error(aerr))
		}
	case retryIn > 0:
		log.Warn("attempt failed; retrying", zap.Duration("in", retryIn), zap.Error(aerr))
		g.fireAt(key, retryIn)
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
	if e.Cooldown > 0 {
		for _, it := range items {
			if it.Canary != r.CanaryID && !it.Notification && it.Time.After(now.Add(-e.Cooldown)) {
				return StateSuppressed, fmt.Sprintf("cooldown: service %q had an action (%s, canary %s) %s ago; cooldown is %s",
					r.Service, it.Actuator, it.Canary, now.Sub(it.Time).Round(time.Second), e.Cooldown), nil
			}
		}
	}
	return "", "", tx.AddHistory(r.Service, Fired{Time: now, Actuator: r.Actuator, Canary: r.CanaryID, Notification: e.Notification})
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
