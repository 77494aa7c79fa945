package guard

import (
	"context"
	"fmt"
	"time"
)

// Query selects audit entries; empty fields match everything.
type Query struct {
	Canary   string
	Service  string
	Actuator string
	// Kind is the entry's kind (verdict, abort, promote, action, approve, reject,
	// reload, recover); Type the actuator's type (webhook, exec, …).
	Kind    EntryKind
	Type    string
	Outcome string
	// Since and Until bound the entries' time (Until exclusive).
	Since, Until time.Time
	// Before pages back: only entries with a smaller sequence number.
	Before uint64
	// Limit is how many entries to return, newest first (default 100).
	Limit int
}

// Match reports whether e is one of the entries q selects (Since and Before aside,
// which a store applies as it scans).
func (q *Query) Match(e *Entry) bool {
	return (q.Canary == "" || e.Canary == q.Canary) &&
		(q.Service == "" || e.Service == q.Service) &&
		(q.Actuator == "" || e.Actuator == q.Actuator) &&
		(q.Kind == "" || e.Kind == q.Kind) &&
		(q.Type == "" || e.Type == q.Type) &&
		(q.Outcome == "" || e.Outcome == q.Outcome) &&
		(q.Until.IsZero() || e.Time.Before(q.Until))
}

// Audit returns the entries matching q, newest first.
func (g *Guard) Audit(ctx context.Context, q Query) ([]Entry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Service != "" {
		q.Service = ServiceKey(q.Service) // as services are recorded
	}
	var out []Entry
	err := g.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.Audit(ctx, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guard: audit: %w", err)
	}
	return out, nil
}

// Actuations returns a canary's actions.
func (g *Guard) Actuations(ctx context.Context, canaryID string) ([]*Actuation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*Actuation
	err := g.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.CanaryActuations(canaryID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guard: actions of %s: %w", canaryID, err)
	}
	return out, nil
}
