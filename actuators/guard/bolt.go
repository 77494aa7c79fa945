package guard

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The guard's buckets, in the analysis store's file (bbolt allows one handle per file).
var (
	// bktActuations: idempotency key → Actuation. Keys start with the canary id and "/",
	// so a canary's actions sit together.
	bktActuations = []byte("guard_actuations")
	// bktPlanned: canary id → PlannedRecord; a canary is planned once, ever.
	bktPlanned = []byte("guard_planned")
	// bktAudit: sequence (8 bytes, big-endian) → Entry.
	bktAudit = []byte("guard_audit")
	// bktHistory: service 0 unix-nanos(8) 0 actuator 0 canary → "n" for a notification,
	// else empty; the fired actions the breaker counts and the cooldown looks at.
	bktHistory = []byte("guard_history")
	// bktOpen: service 0 actuator 0 dedup key → OpenIncident; incidents to resolve.
	bktOpen = []byte("guard_open")
)

var allBuckets = [][]byte{bktActuations, bktPlanned, bktAudit, bktHistory, bktOpen}

// BoltStore is the guard's Store in a bbolt file: the analysis store's
// ((*boltstore.Store).DB()), beside its buckets.
type BoltStore struct{ db *bolt.DB }

var _ Store = (*BoltStore)(nil)

// NewBoltStore creates the guard's buckets in db.
func NewBoltStore(db *bolt.DB) (*BoltStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("guard store: %w", err)
	}
	return &BoltStore{db: db}, nil
}

// Path is the bbolt file's: exec's completion markers and run files live next to it.
func (s *BoltStore) Path() string { return s.db.Path() }

// View runs fn in a read transaction.
func (s *BoltStore) View(_ context.Context, fn func(Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Update runs fn in a write transaction.
func (s *BoltStore) Update(_ context.Context, fn func(Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

type boltTx struct{ tx *bolt.Tx }

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

func decodeActuation(k, v []byte) (*Actuation, error) {
	var a Actuation
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("decode action %s: %w", k, err)
	}
	return &a, nil
}

func (t boltTx) Actuation(key string) (*Actuation, error) {
	v := t.tx.Bucket(bktActuations).Get([]byte(key))
	if v == nil {
		return nil, ErrNoActuation
	}
	return decodeActuation([]byte(key), v)
}

func (t boltTx) PutActuation(a *Actuation) error {
	return putJSON(t.tx.Bucket(bktActuations), []byte(a.Key), a)
}

func (t boltTx) DeleteActuation(key string) error {
	return t.tx.Bucket(bktActuations).Delete([]byte(key))
}

func (t boltTx) CanaryActuations(canaryID string) ([]*Actuation, error) {
	var out []*Actuation
	p := []byte(canaryID + "/")
	c := t.tx.Bucket(bktActuations).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		a, err := decodeActuation(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (t boltTx) EachActuation(fn func(*Actuation) error) error {
	return t.tx.Bucket(bktActuations).ForEach(func(k, v []byte) error {
		a, err := decodeActuation(k, v)
		if err != nil {
			return err
		}
		return fn(a)
	})
}

func (t boltTx) Planned(canaryID string) (bool, error) {
	return t.tx.Bucket(bktPlanned).Get([]byte(canaryID)) != nil, nil
}

func (t boltTx) MarkPlanned(canaryID string, r PlannedRecord) error {
	return putJSON(t.tx.Bucket(bktPlanned), []byte(canaryID), r)
}

func (t boltTx) AppendAudit(e *Entry) error {
	b := t.tx.Bucket(bktAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	e.Seq = seq
	return putJSON(b, binary.BigEndian.AppendUint64(nil, seq), e)
}

func (t boltTx) Audit(ctx context.Context, q Query) ([]Entry, error) {
	out := []Entry{}
	c := t.tx.Bucket(bktAudit).Cursor()
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
			return nil, ctx.Err()
		}
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decode audit entry %x: %w", k, err)
		}
		// Entries are appended in time order, so the scan can stop at Since.
		if !q.Since.IsZero() && e.Time.Before(q.Since) {
			break
		}
		if q.Match(&e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (t boltTx) PruneAudit(cutoff time.Time) error {
	b := t.tx.Bucket(bktAudit)
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

// sanitize keeps a key part free of the 0 separator.
func sanitize(s string) string { return strings.ReplaceAll(s, "\x00", "?") }

func historyPrefix(service string) []byte { return append([]byte(sanitize(service)), 0) }

func historyKey(service string, t time.Time, actuator, canary string) []byte {
	k := historyPrefix(service)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	k = append(k, 0)
	k = append(k, actuator...)
	k = append(k, 0)
	return append(k, canary...)
}

func (t boltTx) History(service string, from, keep time.Time) ([]Fired, error) {
	p := historyPrefix(service)
	b := t.tx.Bucket(bktHistory)
	c := b.Cursor()
	var out []Fired
	var stale [][]byte
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		rest := k[len(p):]
		if len(rest) < 9 {
			continue
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8])))
		if at.Before(keep) {
			stale = append(stale, bytes.Clone(k))
			continue
		}
		if at.Before(from) {
			continue
		}
		parts := bytes.SplitN(rest[9:], []byte{0}, 2)
		f := Fired{Time: at, Actuator: string(parts[0]), Notification: len(v) > 0 && v[0] == 'n'}
		if len(parts) == 2 {
			f.Canary = string(parts[1])
		}
		out = append(out, f)
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t boltTx) AddHistory(service string, f Fired) error {
	v := []byte{}
	if f.Notification {
		v = []byte{'n'}
	}
	return t.tx.Bucket(bktHistory).Put(historyKey(service, f.Time, f.Actuator, f.Canary), v)
}

func openKey(service, actuator, dedup string) []byte {
	return []byte(sanitize(service) + "\x00" + sanitize(actuator) + "\x00" + dedup)
}

func (t boltTx) OpenIncidents(service string) (map[string]map[string]OpenIncident, error) {
	p := historyPrefix(service)
	out := map[string]map[string]OpenIncident{}
	c := t.tx.Bucket(bktOpen).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		parts := bytes.SplitN(k[len(p):], []byte{0}, 2)
		if len(parts) != 2 {
			continue
		}
		var r OpenIncident
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode open incident %q: %w", k, err)
		}
		act := string(parts[0])
		if out[act] == nil {
			out[act] = map[string]OpenIncident{}
		}
		out[act][string(parts[1])] = r
	}
	return out, nil
}

func (t boltTx) PutOpen(service, actuator, dedup string, r OpenIncident) error {
	return putJSON(t.tx.Bucket(bktOpen), openKey(service, actuator, dedup), r)
}

func (t boltTx) DeleteOpen(service, actuator, dedup string) error {
	return t.tx.Bucket(bktOpen).Delete(openKey(service, actuator, dedup))
}
