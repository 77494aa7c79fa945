package guard

import (
	"context"
	"errors"
	"time"
)

// Store is where the guard keeps its state: the actions (intents and outcomes, by
// idempotency key), which canaries are planned, the fired actions the breaker counts and
// the cooldown looks at, the incidents to resolve, and the audit log. NewBoltStore keeps
// it in the analysis store's bbolt file; pgguard.Store in PostgreSQL, for replicas.
//
// Update runs fn in one transaction: everything fn writes commits together or not at
// all, and fn sees no other writer's changes half done (the guard relies on it: an
// action's claim and its breaker check, a plan and its audit entries, an outcome and its
// entry are each one transaction). fn may run more than once; an error from it leaves
// the store as it was.
type Store interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
}

// Tx is one transaction of a Store. Writes are refused in a View.
type Tx interface {
	// Actuation returns the action with the idempotency key, or ErrNoActuation.
	Actuation(key string) (*Actuation, error)
	// PutActuation stores a (new or changed) by its key.
	PutActuation(a *Actuation) error
	// DeleteActuation drops an action.
	DeleteActuation(key string) error
	// CanaryActuations returns a canary's actions in key order.
	CanaryActuations(canaryID string) ([]*Actuation, error)
	// EachActuation calls fn with every action, in key order; fn must not write.
	EachActuation(fn func(*Actuation) error) error

	// Planned reports whether a canary's actions are planned; MarkPlanned records that
	// they are (a canary is planned once, ever). The id is the canary's for its end, and
	// "<canary id>/<hook>" for a hook planned apart from it (on_start).
	Planned(canaryID string) (bool, error)
	MarkPlanned(canaryID string, r PlannedRecord) error

	// AppendAudit adds e to the log with the next sequence number (set in e.Seq).
	AppendAudit(e *Entry) error
	// Audit returns the entries matching q, newest first, at most q.Limit.
	Audit(ctx context.Context, q Query) ([]Entry, error)
	// PruneAudit drops entries older than cutoff (a bounded batch per call).
	PruneAudit(cutoff time.Time) error

	// History returns a service's fired actions at or after from, and drops those
	// older than keep.
	History(service string, from, keep time.Time) ([]Fired, error)
	// AddHistory records an action fired for service at f.Time.
	AddHistory(service string, f Fired) error

	// OpenIncidents returns a service's incidents to resolve: actuator → dedup key →
	// record. PutOpen and DeleteOpen add and close one.
	OpenIncidents(service string) (map[string]map[string]OpenIncident, error)
	PutOpen(service, actuator, dedup string, r OpenIncident) error
	DeleteOpen(service, actuator, dedup string) error
}

// UnfinishedTx is optionally implemented by a Tx that can list the unfinished actions
// (not State.Final: awaiting approval, pending, firing) without reading the others: the
// shared store's, where replicas look for a dead one's actions every lease.
type UnfinishedTx interface {
	// EachUnfinished calls fn with every unfinished action, in key order; fn must not write.
	EachUnfinished(fn func(*Actuation) error) error
}

// eachUnfinished calls fn with every unfinished action of tx, in key order.
func eachUnfinished(tx Tx, fn func(*Actuation) error) error {
	if u, ok := tx.(UnfinishedTx); ok {
		return u.EachUnfinished(fn)
	}
	return tx.EachActuation(func(a *Actuation) error {
		if a.State.Final() {
			return nil
		}
		return fn(a)
	})
}

// ErrNoActuation is a Tx's answer for an idempotency key it does not hold.
var ErrNoActuation = errors.New("no such action")

// PlannedRecord marks a canary planned: when, for which trigger, and what ended it (its
// analysis.ActionKind, or stale).
type PlannedRecord struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"`
	Kind    EntryKind `json:"kind"`
}

// OpenIncident is what a resolvable actuator opened, to close when the service passes.
type OpenIncident struct {
	Canary string    `json:"canary"`
	Key    string    `json:"key"`
	Time   time.Time `json:"time"`
}

// Fired is one fired action in a service's history.
type Fired struct {
	Time     time.Time
	Actuator string
	Canary   string
	// Notification: fired by a notification actuator, which counts for its own breaker
	// but puts no service in cooldown.
	Notification bool
}

// kindStale marks a canary planned as skipped: it ended more than recover_window before
// a restart found it.
const kindStale EntryKind = "stale"
