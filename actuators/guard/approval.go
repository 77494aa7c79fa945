package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/identity"
)

// Errors of Approve and Reject.
var (
	// ErrNothingAwaiting: no action of the canary (or none of the named ones) waits for
	// approval.
	ErrNothingAwaiting = errors.New("no action of this canary awaits approval")
	// ErrExpired: what waited for approval expired (actuation.approval_timeout).
	ErrExpired = errors.New("the actions awaiting approval have expired")
)

// Approve releases a canary's actions held for approval (all, or those of the named
// actuators) to fire; the breaker and the cooldown still apply. The actor comes from
// ctx. It returns every action of the canary after the change.
func (g *Guard) Approve(ctx context.Context, canaryID string, names []string, reason string) ([]*Actuation, error) {
	return g.decide(ctx, canaryID, names, reason, true)
}

// Reject drops a canary's actions held for approval (all, or those of the named
// actuators). The actor comes from ctx.
func (g *Guard) Reject(ctx context.Context, canaryID string, names []string, reason string) ([]*Actuation, error) {
	return g.decide(ctx, canaryID, names, reason, false)
}

func (g *Guard) decide(ctx context.Context, canaryID string, names []string, reason string, approve bool) ([]*Actuation, error) {
	c, err := g.cs.Get(ctx, canaryID)
	if err != nil {
		return nil, err
	}
	who := identity.From(ctx, "api")
	kind, to := KindReject, StateRejected
	if approve {
		kind, to = KindApprove, StatePending
	}
	now := g.now()
	var released, expired []*Actuation
	var all []*Actuation
	stillHeld := false
	err = g.update(func(tx Tx) error {
		released, expired, stillHeld = nil, nil, false
		recs, err := tx.CanaryActuations(canaryID)
		if err != nil {
			return err
		}
		all = recs
		var missing []string
		for _, n := range names {
			if !slices.ContainsFunc(recs, func(r *Actuation) bool { return r.Actuator == n && r.State == StateAwaitingApproval }) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: %s", ErrNothingAwaiting, strings.Join(missing, ", "))
		}
		for _, r := range recs {
			if r.State != StateAwaitingApproval {
				continue
			}
			if len(names) > 0 && !slices.Contains(names, r.Actuator) {
				stillHeld = true
				continue
			}
			r.UpdatedAt = now
			if r.ExpiresAt != nil && now.After(*r.ExpiresAt) {
				r.State, r.DoneAt, r.Error = StateExpired, &now, fmt.Sprintf("approval window ended at %s", r.ExpiresAt.UTC().Format(time.RFC3339))
				expired = append(expired, r)
				if err := tx.PutActuation(r); err != nil {
					return err
				}
				if err := tx.AppendAudit(r.entry(now, KindAction, Actor{Name: "canaryd"})); err != nil {
					return err
				}
				continue
			}
			r.State, r.ExpiresAt, r.Owner = to, nil, g.o.Replica
			if !approve {
				r.DoneAt = &now
			}
			released = append(released, r)
			if err := tx.PutActuation(r); err != nil {
				return err
			}
			e := r.entry(now, kind, who)
			e.Reason = reason
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range expired {
		g.m.AwaitingApproval.Dec()
		g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(StateExpired)).Inc()
	}
	for _, r := range released {
		g.m.AwaitingApproval.Dec()
		if approve {
			g.enqueueFire(r.Key)
		} else {
			g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(StateRejected)).Inc()
		}
	}
	switch {
	case len(released) == 0 && len(expired) > 0:
		return all, ErrExpired
	case len(released) == 0:
		return all, ErrNothingAwaiting
	}
	if !stillHeld {
		// The last held action is decided: so is the canary.
		g.m.TimeToDecide.WithLabelValues(c.Analysis).Observe(now.Sub(c.Start).Seconds())
	}
	g.log.Info("actions "+string(kind)+"d", zap.String("canary", canaryID), zap.Int("actions", len(released)), zap.String("who", who.Name))
	return all, nil
}

// Sweep expires actions whose approval window ended and drops audit entries and finished
// actions older than actuation.audit_retention. The guard runs it every SweepEvery.
func (g *Guard) Sweep(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := g.setup.Load()
	now := g.now()
	cutoff := now.Add(-time.Duration(s.cfg.Actuation.AuditRetention))
	var expired []*Actuation
	err := g.update(func(tx Tx) error {
		expired = nil
		var drop []string
		err := tx.EachActuation(func(r *Actuation) error {
			switch {
			case r.State == StateAwaitingApproval && r.ExpiresAt != nil && now.After(*r.ExpiresAt):
				r.State, r.DoneAt, r.UpdatedAt = StateExpired, &now, now
				r.Error = fmt.Sprintf("approval window ended at %s", r.ExpiresAt.UTC().Format(time.RFC3339))
				expired = append(expired, r)
			case r.State.Final() && r.DoneAt != nil && r.DoneAt.Before(cutoff):
				drop = append(drop, r.Key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := tx.DeleteActuation(k); err != nil {
				return err
			}
		}
		for _, r := range expired {
			if err := tx.PutActuation(r); err != nil {
				return err
			}
			if err := tx.AppendAudit(r.entry(now, KindAction, Actor{Name: "canaryd"})); err != nil {
				return err
			}
		}
		return tx.PruneAudit(cutoff)
	})
	if err != nil {
		return fmt.Errorf("guard: sweep: %w", err)
	}
	for _, r := range expired {
		g.m.AwaitingApproval.Dec()
		g.m.Actions.WithLabelValues(r.Actuator, r.Type, string(StateExpired)).Inc()
		g.log.Warn("approval expired", zap.String("key", r.Key))
	}
	return nil
}
