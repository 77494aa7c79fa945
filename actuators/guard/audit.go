package guard

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
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

func (q *Query) match(e *Entry) bool {
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
	out := []Entry{}
	err := g.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktAudit).Cursor()
		var k, v []byte
		if q.Before > 0 {
			k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, q.Before))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for n := 0; k != nil && len(out) < q.Limit; k, v = c.Prev() {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry %x: %w", k, err)
			}
			// Entries are appended in time order, so the scan can stop at Since.
			if !q.Since.IsZero() && e.Time.Before(q.Since) {
				break
			}
			if q.match(&e) {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("guard: audit: %w", err)
	}
	return out, nil
}

// pruneAudit deletes entries older than cutoff; they are at the start of the log.
func pruneAudit(tx *bolt.Tx, cutoff time.Time) error {
	b := tx.Bucket(bktAudit)
	c := b.Cursor()
	var drop [][]byte
	for k, v := c.First(); k != nil && len(drop) < 10000; k, v = c.Next() {
		var e struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(v, &e); err != nil || !e.Time.Before(cutoff) {
			break
		}
		drop = append(drop, k)
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Actuations returns a canary's actions.
func (g *Guard) Actuations(ctx context.Context, canaryID string) ([]*Actuation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*Actuation
	err := g.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = canaryActuations(tx, canaryID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guard: actions of %s: %w", canaryID, err)
	}
	return out, nil
}

func decodeActuation(k, v []byte) (*Actuation, error) {
	var a Actuation
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("decode action %s: %w", k, err)
	}
	return &a, nil
}
