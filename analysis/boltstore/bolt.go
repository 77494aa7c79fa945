// Package boltstore is the embedded analysis.Store: one bbolt file holding canaries,
// interval results, actions and analysis snapshots as JSON. It owns the file's layout and
// its transactions; it never decides anything about a canary (mutations come from the
// caller).
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
)

// Bucket names. Interval and action keys are the canary id, a 0 byte, and the index or
// sequence as 8 big-endian bytes, so a canary's entries sit together in order.
var (
	bktCanaries  = []byte("canaries")
	bktIntervals = []byte("intervals")
	bktActions   = []byte("actions")
	bktAnalyses  = []byte("analyses")
	// bktByKey maps a keyed canary's key to its id; an entry lives as long as its canary.
	bktByKey = []byte("canaries_by_key")
)

// Store is a bbolt-backed analysis.Store.
type Store struct {
	db *bolt.DB
}

var _ analysis.Store = (*Store)(nil)

// DB is the open database, for other layers (the actuators' audit log) to keep their own
// buckets in the same file: bbolt allows one process-wide handle per file.
func (s *Store) DB() *bolt.DB { return s.db }

// DefaultCheckTimeout bounds the check of the file at open (see OpenWith).
const DefaultCheckTimeout = 10 * time.Second

// Options say how to open the store.
type Options struct {
	// LockTimeout is how long a second process opening the same file waits for the lock.
	LockTimeout time.Duration
	// CheckTimeout bounds the consistency check of an existing file at open (default
	// DefaultCheckTimeout); past it, the check is cut short with a warning in the log.
	CheckTimeout time.Duration
	Logger       *zap.Logger
}

// Open opens (creating when needed) the store at path. A second process opening the same
// file waits up to timeout for the lock, then fails.
func Open(path string, timeout time.Duration) (*Store, error) {
	return OpenWith(path, Options{LockTimeout: timeout})
}

// OpenWith opens (creating when needed) the store at path, after checking an existing
// file: a truncated or corrupted one is a *DamagedError, never a crash of bbolt's.
func OpenWith(path string, o Options) (*Store, error) {
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("boltstore: create %s: %w", dir, err)
		}
	}
	if err := checkFile(path, o.LockTimeout, o.CheckTimeout, o.Logger); err != nil {
		return nil, err
	}
	db, err := openRW(path, o.LockTimeout)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktCanaries, bktIntervals, bktActions, bktAnalyses, bktByKey} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return ensureIndex(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// openRW opens the file for the daemon; a panic of bbolt's (the freelist rebuild on a
// file the check could not finish) is a *DamagedError too.
func openRW(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, &DamagedError{Path: path, Reason: oneLine(fmt.Sprint(r))}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		// A large first mapping (address space, not memory): growing the map waits for
		// every open read transaction and blocks new ones, which stalled the API for
		// seconds under load once the file passed the old 256 MiB (benchmarks/RESULTS.md).
		InitialMmapSize: 1 << 30,
		// The freelist is rebuilt at open instead of written at every commit: commits
		// are the scheduler's hot path, opens happen once.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func seqKey(id string, n uint64) []byte {
	k := make([]byte, 0, len(id)+9)
	k = append(k, id...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, n)
}

func prefix(id string) []byte { return append([]byte(id), 0) }

// Create stores a new canary and its analysis snapshot.
func (s *Store) Create(ctx context.Context, c *analysis.Canary, src []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("boltstore: encode canary %s: %w", c.ID, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bktCanaries)
		if cb.Get([]byte(c.ID)) != nil {
			return analysis.ErrExists
		}
		if c.Key != "" {
			kb := tx.Bucket(bktByKey)
			if kb.Get([]byte(c.Key)) != nil {
				return analysis.ErrKeyExists
			}
			if err := kb.Put([]byte(c.Key), []byte(c.ID)); err != nil {
				return err
			}
		}
		if ab := tx.Bucket(bktAnalyses); ab.Get([]byte(c.AnalysisHash)) == nil {
			if err := ab.Put([]byte(c.AnalysisHash), src); err != nil {
				return err
			}
		}
		if err := cb.Put([]byte(c.ID), b); err != nil {
			return err
		}
		return indexCanary(tx, nil, c)
	})
	if err != nil {
		return fmt.Errorf("boltstore: create canary %s: %w", c.ID, err)
	}
	return nil
}

// Get returns one canary.
func (s *Store) Get(ctx context.Context, id string) (*analysis.Canary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *analysis.Canary
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = getCanary(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: get canary %s: %w", id, err)
	}
	return c, nil
}

// GetByKey returns the canary that holds key.
func (s *Store) GetByKey(ctx context.Context, key string) (*analysis.Canary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *analysis.Canary
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = canaryByKey(tx, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: get canary by key: %w", err)
	}
	return c, nil
}

func canaryByKey(tx *bolt.Tx, key string) (*analysis.Canary, error) {
	id := tx.Bucket(bktByKey).Get([]byte(key))
	if id == nil || key == "" {
		return nil, analysis.ErrNotFound
	}
	return getCanary(tx, string(id))
}

func getCanary(tx *bolt.Tx, id string) (*analysis.Canary, error) {
	v := tx.Bucket(bktCanaries).Get([]byte(id))
	if v == nil {
		return nil, analysis.ErrNotFound
	}
	var c analysis.Canary
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &c, nil
}

// List returns the canaries with a status (all for ""), oldest first.
func (s *Store) List(ctx context.Context, status analysis.Status) ([]*analysis.Canary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*analysis.Canary
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktCanaries).ForEach(func(k, v []byte) error {
			var c analysis.Canary
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode canary %s: %w", k, err)
			}
			if status == "" || c.Status == status {
				out = append(out, &c)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: list canaries: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// mutate applies fn to the canary id inside tx and records its actions.
func mutate(tx *bolt.Tx, id string, fn analysis.Mutation) (*analysis.Canary, error) {
	c, err := getCanary(tx, id)
	if err != nil {
		return nil, err
	}
	before := *c
	actions, err := fn(c)
	if err != nil {
		return nil, err
	}
	c.Key = before.Key // a key never changes: the index holds it
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if err := tx.Bucket(bktCanaries).Put([]byte(id), b); err != nil {
		return nil, err
	}
	if err := indexCanary(tx, &before, c); err != nil {
		return nil, err
	}
	ab := tx.Bucket(bktActions)
	for i := range actions {
		a := actions[i]
		seq, err := ab.NextSequence()
		if err != nil {
			return nil, err
		}
		a.CanaryID, a.Seq = id, seq
		ab2, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encode action: %w", err)
		}
		if err := ab.Put(seqKey(id, seq), ab2); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Update applies fn to a canary in one transaction. Concurrent updates are batched into
// one disk sync (bbolt's Batch), which is why fn may run more than once.
func (s *Store) Update(ctx context.Context, id string, fn analysis.Mutation) (*analysis.Canary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *analysis.Canary
	err := s.db.Batch(func(tx *bolt.Tx) error {
		c, err := mutate(tx, id, fn)
		out = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: update canary %s: %w", id, err)
	}
	return out, nil
}

// RecordInterval stores an interval result with its canary's new state.
func (s *Store) RecordInterval(ctx context.Context, r *analysis.IntervalResult, fn analysis.Mutation) (*analysis.Canary, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.Index < 1 {
		return nil, fmt.Errorf("boltstore: record interval %d of %s: index must be >= 1", r.Index, r.CanaryID)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("boltstore: encode interval %d of %s: %w", r.Index, r.CanaryID, err)
	}
	var out *analysis.Canary
	err = s.db.Batch(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bktIntervals)
		key := seqKey(r.CanaryID, uint64(r.Index))
		if ib.Get(key) != nil {
			return analysis.ErrIntervalExists
		}
		c, err := mutate(tx, r.CanaryID, fn)
		if err != nil {
			return err
		}
		out = c
		return ib.Put(key, b)
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: record interval %d of %s: %w", r.Index, r.CanaryID, err)
	}
	return out, nil
}

// Intervals returns a canary's intervals in index order.
func (s *Store) Intervals(ctx context.Context, id string) ([]analysis.IntervalResult, error) {
	return s.intervals(ctx, id, true)
}

// IntervalSummaries is Intervals without the points: the JSON decoder skips them
// without parsing a number.
func (s *Store) IntervalSummaries(ctx context.Context, id string) ([]analysis.IntervalResult, error) {
	return s.intervals(ctx, id, false)
}

func (s *Store) intervals(ctx context.Context, id string, withPoints bool) ([]analysis.IntervalResult, error) {
	var out []analysis.IntervalResult
	err := s.scan(ctx, bktIntervals, id, func(v []byte) error {
		var r struct {
			analysis.IntervalResult
			// Without points, this shallower field takes them, undecoded.
			Skipped json.RawMessage `json:"points,omitempty"`
		}
		var dst any = &r
		if withPoints {
			dst = &r.IntervalResult
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return err
		}
		out = append(out, r.IntervalResult)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: intervals of %s: %w", id, err)
	}
	return out, nil
}

var _ analysis.SummaryStore = (*Store)(nil)

// Actions returns a canary's actions in order.
func (s *Store) Actions(ctx context.Context, id string) ([]analysis.Action, error) {
	var out []analysis.Action
	err := s.scan(ctx, bktActions, id, func(v []byte) error {
		var a analysis.Action
		if err := json.Unmarshal(v, &a); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: actions of %s: %w", id, err)
	}
	return out, nil
}

func (s *Store) scan(ctx context.Context, bucket []byte, id string, fn func(v []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := prefix(id)
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if err := fn(v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Analysis returns an analysis snapshot.
func (s *Store) Analysis(ctx context.Context, hash string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktAnalyses).Get([]byte(hash))
		if v == nil {
			return errors.New("no such analysis snapshot")
		}
		out = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: analysis %s: %w", hash, err)
	}
	return out, nil
}
