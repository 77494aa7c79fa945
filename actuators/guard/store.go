package guard

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
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
	// bktPlanned: canary id → planned marker; a canary is planned once, ever.
	bktPlanned = []byte("guard_planned")
	// bktAudit: sequence (8 bytes, big-endian) → Entry.
	bktAudit = []byte("guard_audit")
	// bktHistory: service 0 unix-nanos(8) 0 actuator 0 canary → empty; the fired actions
	// the breaker counts and the cooldown looks at.
	bktHistory = []byte("guard_history")
	// bktOpen: service 0 actuator 0 dedup key → openRecord; incidents to resolve.
	bktOpen = []byte("guard_open")
)

var allBuckets = [][]byte{bktActuations, bktPlanned, bktAudit, bktHistory, bktOpen}

func initBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
}

// kindStale marks a canary planned as skipped: it ended more than recover_window before
// a restart found it.
const kindStale EntryKind = "stale"

type plannedRecord struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"`
	Kind    EntryKind `json:"kind"`
}

type openRecord struct {
	Canary string    `json:"canary"`
	Key    string    `json:"key"`
	Time   time.Time `json:"time"`
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

var errNoActuation = errors.New("no such action")

func getActuation(tx *bolt.Tx, key string) (*Actuation, error) {
	v := tx.Bucket(bktActuations).Get([]byte(key))
	if v == nil {
		return nil, errNoActuation
	}
	var a Actuation
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("decode action %s: %w", key, err)
	}
	return &a, nil
}

func putActuation(tx *bolt.Tx, a *Actuation) error {
	return putJSON(tx.Bucket(bktActuations), []byte(a.Key), a)
}

// canaryActuations returns a canary's actions in key order.
func canaryActuations(tx *bolt.Tx, canaryID string) ([]*Actuation, error) {
	var out []*Actuation
	p := []byte(canaryID + "/")
	c := tx.Bucket(bktActuations).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		var a Actuation
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("decode action %s: %w", k, err)
		}
		out = append(out, &a)
	}
	return out, nil
}

// appendAudit adds e to the log with the next sequence number.
func appendAudit(tx *bolt.Tx, e *Entry) error {
	b := tx.Bucket(bktAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	e.Seq = seq
	return putJSON(b, binary.BigEndian.AppendUint64(nil, seq), e)
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

type historyItem struct {
	t        time.Time
	actuator string
	canary   string
	// notification: fired by a notification actuator, which counts for its own breaker
	// but puts no service in cooldown.
	notification bool
}

// history returns a service's fired actions since from, pruning those older than keep.
func history(tx *bolt.Tx, service string, from, keep time.Time) ([]historyItem, error) {
	p := historyPrefix(service)
	b := tx.Bucket(bktHistory)
	c := b.Cursor()
	var out []historyItem
	var stale [][]byte
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		rest := k[len(p):]
		if len(rest) < 9 {
			continue
		}
		t := time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8])))
		if t.Before(keep) {
			stale = append(stale, bytes.Clone(k))
			continue
		}
		if t.Before(from) {
			continue
		}
		parts := bytes.SplitN(rest[9:], []byte{0}, 2)
		it := historyItem{t: t, actuator: string(parts[0]), notification: len(v) > 0 && v[0] == 'n'}
		if len(parts) == 2 {
			it.canary = string(parts[1])
		}
		out = append(out, it)
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func openKey(service, actuator, dedup string) []byte {
	return []byte(sanitize(service) + "\x00" + sanitize(actuator) + "\x00" + dedup)
}

// openFor returns a service's open incidents: actuator → dedup key → record.
func openFor(tx *bolt.Tx, service string) (map[string]map[string]openRecord, error) {
	p := historyPrefix(service)
	out := map[string]map[string]openRecord{}
	c := tx.Bucket(bktOpen).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		parts := bytes.SplitN(k[len(p):], []byte{0}, 2)
		if len(parts) != 2 {
			continue
		}
		var r openRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode open incident %q: %w", k, err)
		}
		act := string(parts[0])
		if out[act] == nil {
			out[act] = map[string]openRecord{}
		}
		out[act][string(parts[1])] = r
	}
	return out, nil
}
