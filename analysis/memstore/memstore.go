// Package memstore is an in-memory analysis.Store, for simulations (canaryd eval) and
// tests that must not wait on disk syncs. It keeps the same promises as the embedded
// store (storetest checks both); it never persists anything: Close drops everything.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/canaryd/canaryd/analysis"
)

// errClosed is returned by every method after Close.
var errClosed = errors.New("memstore: store is closed")

// Store is an in-memory analysis.Store, safe for concurrent use. Every value going in or
// out is copied, so callers never share state with the store.
type Store struct {
	mu       sync.RWMutex
	closed   bool
	seq      uint64
	canaries map[string]*entry
	byKey    map[string]string // key -> id
	analyses map[string][]byte
}

type entry struct {
	c         analysis.Canary
	intervals map[int]analysis.IntervalResult
	actions   []analysis.Action
}

var _ analysis.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{canaries: map[string]*entry{}, byKey: map[string]string{}, analyses: map[string][]byte{}}
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return errClosed
	}
	return nil
}

// Create stores a new canary and its analysis snapshot.
func (s *Store) Create(ctx context.Context, c *analysis.Canary, src []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if _, ok := s.canaries[c.ID]; ok {
		return fmt.Errorf("memstore: create canary %s: %w", c.ID, analysis.ErrExists)
	}
	if _, ok := s.byKey[c.Key]; ok && c.Key != "" {
		return fmt.Errorf("memstore: create canary %s: %w", c.ID, analysis.ErrKeyExists)
	}
	if c.Key != "" {
		s.byKey[c.Key] = c.ID
	}
	if _, ok := s.analyses[c.AnalysisHash]; !ok {
		s.analyses[c.AnalysisHash] = slices.Clone(src)
	}
	s.canaries[c.ID] = &entry{c: copyCanary(c), intervals: map[int]analysis.IntervalResult{}}
	return nil
}

// Get returns a copy of one canary.
func (s *Store) Get(ctx context.Context, id string) (*analysis.Canary, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	e, ok := s.canaries[id]
	if !ok {
		return nil, fmt.Errorf("memstore: get canary %s: %w", id, analysis.ErrNotFound)
	}
	c := copyCanary(&e.c)
	return &c, nil
}

// GetByKey returns a copy of the canary that holds key.
func (s *Store) GetByKey(ctx context.Context, key string) (*analysis.Canary, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	e, ok := s.canaries[s.byKey[key]]
	if !ok || key == "" {
		return nil, fmt.Errorf("memstore: get canary by key: %w", analysis.ErrNotFound)
	}
	c := copyCanary(&e.c)
	return &c, nil
}

// List returns the canaries with a status (all for ""), oldest first.
func (s *Store) List(ctx context.Context, status analysis.Status) ([]*analysis.Canary, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []*analysis.Canary
	for _, e := range s.canaries {
		if status == "" || e.c.Status == status {
			c := copyCanary(&e.c)
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ListPage returns a page of the list, newest first.
func (s *Store) ListPage(ctx context.Context, q analysis.ListQuery) (analysis.Page, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return analysis.Page{}, err
	}
	if q.Key != "" {
		var c *analysis.Canary
		if e, ok := s.canaries[s.byKey[q.Key]]; ok {
			cc := copyCanary(&e.c)
			c = &cc
		}
		return analysis.KeyPage(c, q), nil
	}
	var match []*entry
	for _, e := range s.canaries {
		if (q.Status == "" || e.c.Status == q.Status) && (q.After == nil || q.After.Before(analysis.CursorOf(&e.c))) {
			match = append(match, e)
		}
	}
	slices.SortFunc(match, func(a, b *entry) int {
		if analysis.CursorOf(&a.c).Before(analysis.CursorOf(&b.c)) {
			return -1
		}
		return 1
	})
	var p analysis.Page
	for i, e := range match {
		if i == q.Limit {
			cur := analysis.CursorOf(p.Canaries[len(p.Canaries)-1])
			p.Next = &cur
			break
		}
		c := copyCanary(&e.c)
		p.Canaries = append(p.Canaries, &c)
	}
	return p, nil
}

// CountByStatus counts the canaries by status.
func (s *Store) CountByStatus(ctx context.Context) (map[analysis.Status]int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := map[analysis.Status]int{}
	for _, e := range s.canaries {
		out[e.c.Status]++
	}
	return out, nil
}

// DeleteEnded deletes up to max final canaries that ended before the given time, oldest
// first.
func (s *Store) DeleteEnded(ctx context.Context, before time.Time, max int) ([]*analysis.Canary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var old []*analysis.Canary
	for _, e := range s.canaries {
		if e.c.Status.Final() && e.c.Ended().Before(before) {
			c := copyCanary(&e.c)
			old = append(old, &c)
		}
	}
	slices.SortFunc(old, func(a, b *analysis.Canary) int {
		if analysis.CursorOf(b).Before(analysis.CursorOf(a)) {
			return -1
		}
		return 1
	})
	if len(old) > max {
		old = old[:max]
	}
	for _, c := range old {
		s.deleteLocked(c.ID)
	}
	return old, nil
}

// mutateLocked applies fn to a copy of the canary and commits the copy and its actions
// only when fn succeeds.
func (s *Store) mutateLocked(id string, fn analysis.Mutation) (*analysis.Canary, *entry, error) {
	e, ok := s.canaries[id]
	if !ok {
		return nil, nil, analysis.ErrNotFound
	}
	c := copyCanary(&e.c)
	actions, err := fn(&c)
	if err != nil {
		return nil, nil, err
	}
	c.Key = e.c.Key // a key never changes: the index holds it
	e.c = copyCanary(&c)
	for _, a := range actions {
		s.seq++
		a.CanaryID, a.Seq = id, s.seq
		e.actions = append(e.actions, a)
	}
	return &c, e, nil
}

// Update applies fn to a canary atomically.
func (s *Store) Update(ctx context.Context, id string, fn analysis.Mutation) (*analysis.Canary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	c, _, err := s.mutateLocked(id, fn)
	if err != nil {
		return nil, fmt.Errorf("memstore: update canary %s: %w", id, err)
	}
	return c, nil
}

// RecordInterval stores an interval result with its canary's new state, atomically.
func (s *Store) RecordInterval(ctx context.Context, r *analysis.IntervalResult, fn analysis.Mutation) (*analysis.Canary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if r.Index < 1 {
		return nil, fmt.Errorf("memstore: record interval %d of %s: index must be >= 1", r.Index, r.CanaryID)
	}
	if e, ok := s.canaries[r.CanaryID]; ok {
		if _, dup := e.intervals[r.Index]; dup {
			return nil, fmt.Errorf("memstore: record interval %d of %s: %w", r.Index, r.CanaryID, analysis.ErrIntervalExists)
		}
	}
	c, e, err := s.mutateLocked(r.CanaryID, fn)
	if err != nil {
		return nil, fmt.Errorf("memstore: record interval %d of %s: %w", r.Index, r.CanaryID, err)
	}
	e.intervals[r.Index] = copyInterval(r)
	return c, nil
}

// Intervals returns copies of a canary's intervals in index order.
func (s *Store) Intervals(ctx context.Context, id string) ([]analysis.IntervalResult, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	e, ok := s.canaries[id]
	if !ok {
		return nil, nil // as the embedded store: no canary, no intervals
	}
	keys := slices.Sorted(maps.Keys(e.intervals))
	out := make([]analysis.IntervalResult, len(keys))
	for i, k := range keys {
		r := e.intervals[k]
		out[i] = copyInterval(&r)
	}
	return out, nil
}

// Actions returns a canary's actions in the order they were recorded.
func (s *Store) Actions(ctx context.Context, id string) ([]analysis.Action, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if e, ok := s.canaries[id]; ok {
		return slices.Clone(e.actions), nil
	}
	return nil, nil
}

// Analysis returns an analysis snapshot by its hash.
func (s *Store) Analysis(ctx context.Context, hash string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	src, ok := s.analyses[hash]
	if !ok {
		return nil, fmt.Errorf("memstore: analysis %s: no such analysis snapshot", hash)
	}
	return slices.Clone(src), nil
}

// Delete forgets a canary, its intervals and its actions (analysis snapshots stay): a
// simulation of many canaries calls it once it has read what it needs, so memory stays
// bounded. It is not part of analysis.Store.
func (s *Store) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(id)
}

// deleteLocked forgets a canary and frees its key.
func (s *Store) deleteLocked(id string) {
	if e, ok := s.canaries[id]; ok && e.c.Key != "" {
		delete(s.byKey, e.c.Key)
	}
	delete(s.canaries, id)
}

// Len is how many canaries the store holds.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.canaries)
}

// Close drops everything; later calls fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.canaries, s.byKey, s.analyses = nil, nil, nil
	return nil
}

func copyCanary(c *analysis.Canary) analysis.Canary {
	out := *c
	out.Baseline = maps.Clone(c.Baseline)
	out.Canary = maps.Clone(c.Canary)
	out.Vars = maps.Clone(c.Vars)
	out.Sequential = maps.Clone(c.Sequential)
	if c.Asked != nil {
		v := *c.Asked
		out.Asked = &v
	}
	out.Preflight = slices.Clone(c.Preflight)
	if c.Score != nil {
		v := *c.Score
		out.Score = &v
	}
	if c.EndedAt != nil {
		v := *c.EndedAt
		out.EndedAt = &v
	}
	if c.FirstFailAt != nil {
		v := *c.FirstFailAt
		out.FirstFailAt = &v
	}
	out.Recovery = c.CloneRecovery()
	return out
}

func copyInterval(r *analysis.IntervalResult) analysis.IntervalResult {
	out := *r
	out.Score.Groups = slices.Clone(r.Score.Groups)
	out.Score.CriticalFailures = slices.Clone(r.Score.CriticalFailures)
	out.Score.CriticalUnjudged = slices.Clone(r.Score.CriticalUnjudged)
	out.Metrics = slices.Clone(r.Metrics)
	if r.Points != nil {
		out.Points = make([]analysis.MetricPoints, len(r.Points))
		for i, p := range r.Points {
			out.Points[i] = analysis.MetricPoints{Metric: p.Metric, Baseline: slices.Clone(p.Baseline), Canary: slices.Clone(p.Canary), Whole: p.Whole}
		}
	}
	return out
}
