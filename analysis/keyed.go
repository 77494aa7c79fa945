package analysis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
)

// MaxKeyLen caps a registration's key.
const MaxKeyLen = 256

// keyRe is what a key may hold: what pipelines build keys from (names, namespaces,
// commit hashes, run ids, joined by - . _ : / @), and nothing that needs quoting in a
// URL path segment of a page, a log field or a query string beyond %-escaping.
var keyRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._:/@-]*$`)

// CheckKey checks a registration's key ("" is no key).
func CheckKey(key string) error {
	switch {
	case key == "":
		return nil
	case len(key) > MaxKeyLen:
		return inputErr("key", "longer than %d bytes", MaxKeyLen)
	case !keyRe.MatchString(key):
		return inputErr("key", "may hold only ASCII letters, digits and . _ : / @ - (not first: . : / @ -)")
	}
	return nil
}

// Outcome is what a keyed registration did.
type Outcome int

const (
	// Created: no stored canary held the key (or there was no key); this one was stored.
	Created Outcome = iota + 1
	// Existing: a stored canary holds the key and was registered with the same request;
	// it is returned as it is now (running, or ended with its verdict).
	Existing
	// Conflict: a stored canary holds the key but was registered with another request;
	// the error is a *KeyConflictError.
	Conflict
)

func (o Outcome) String() string {
	switch o {
	case Created:
		return "created"
	case Existing:
		return "existing"
	case Conflict:
		return "conflict"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// KeyConflictError is a keyed registration whose key a canary registered with another
// request holds. Field is the first field that differs, as the API names fields
// (name, analysis, baseline.track, canary.version, vars.app, lifetime, interval, start,
// dry_run).
type KeyConflictError struct {
	Key   string
	ID    string // the canary that holds the key
	Field string
}

func (e *KeyConflictError) Error() string {
	return fmt.Sprintf("key %q is held by canary %s, registered with a different %s: a repeat must send the same request, or use another key", e.Key, e.ID, e.Field)
}

// RegisterByKey creates a canary or returns the one its key already names: the entry
// point for callers that retry (pipelines, Argo Rollouts' web provider, Flagger's
// webhooks). Without r.Key it is Register. With one:
//   - no stored canary holds the key: the registration is validated and stored (Created);
//   - the canary that holds it was registered with the same request (the same fields,
//     lifetime, interval and start compared as given, not as defaulted): that canary,
//     whatever its status now (Existing), without validating r again, so a repeat is
//     answered even after a reload removed its analysis or a cap was reached;
//   - it was registered with another request: that canary, Conflict and a
//     *KeyConflictError naming the first differing field.
//
// Concurrent calls with one key store one canary (the store's key index decides). A key is
// bound while its canary is stored: once retention deletes the canary the key registers a
// new one.
func (s *Scheduler) RegisterByKey(ctx context.Context, r Registration) (*Canary, Outcome, error) {
	if err := CheckKey(r.Key); err != nil {
		return nil, 0, err
	}
	if r.Key == "" {
		c, err := s.register(ctx, r)
		return c, Created, err
	}
	// The store's key index makes one canary of concurrent calls across processes; this
	// lock makes a repeat racing its original in this one wait for it and answer
	// Existing, rather than take a running slot (a 429 at the cap) only to lose.
	unlock, err := s.keys.lock(ctx, r.Key)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	// Twice at most: a canary that holds the key may be deleted by retention between
	// our Create and our read of it.
	for range 2 {
		if c, out, err := s.byKey(ctx, r); !errors.Is(err, ErrNotFound) {
			return c, out, err
		}
		c, err := s.register(ctx, r)
		if !errors.Is(err, ErrKeyExists) {
			return c, Created, err
		}
	}
	return s.byKey(ctx, r)
}

// keyLocks holds a lock per key while registrations with that key are in flight.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	held    chan struct{} // a token in it: the lock is held
	waiters int
}

// lock takes key's lock, or gives up when ctx ends (a store that hangs must not pile up
// callers past their deadlines), and returns its release.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{held: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.waiters++
	k.mu.Unlock()
	done := func() {
		k.mu.Lock()
		if l.waiters--; l.waiters == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; done() }, nil
	case <-ctx.Done():
		done()
		return nil, fmt.Errorf("register: waiting for another registration with key %q: %w", key, ctx.Err())
	}
}

// byKey compares r with the canary that holds its key; ErrNotFound when none does.
func (s *Scheduler) byKey(ctx context.Context, r Registration) (*Canary, Outcome, error) {
	c, err := s.o.Store.GetByKey(ctx, r.Key)
	if err != nil {
		return nil, 0, err
	}
	if f := DiffRegistration(c, r); f != "" {
		return c, Conflict, &KeyConflictError{Key: r.Key, ID: c.ID, Field: f}
	}
	return c, Existing, nil
}

// DiffRegistration is the first field in which r differs from the registration c was
// created by ("" when none does), named as the API names it. An absent map and an empty
// one are the same; a variable present in one and not the other differs.
func DiffRegistration(c *Canary, r Registration) string {
	var asked Asked
	if c.Asked != nil {
		asked = *c.Asked
	}
	switch {
	case c.Name != r.Name:
		return "name"
	case c.Analysis != r.Analysis:
		return "analysis"
	}
	for _, m := range []struct {
		field      string
		have, want map[string]string
	}{{"baseline", c.Baseline, r.Baseline}, {"canary", c.Canary, r.Canary}, {"vars", c.Vars, r.Vars}} {
		if k, ok := diffVars(m.have, m.want); ok {
			return m.field + "." + k
		}
	}
	switch {
	case asked.Lifetime != r.Lifetime:
		return "lifetime"
	case asked.Interval != r.Interval:
		return "interval"
	case !asked.Start.Equal(r.Start):
		return "start"
	case !asked.End.Equal(r.End):
		return "end"
	case !sameThresholds(c.Thresholds, r.Thresholds):
		return "thresholds"
	case c.DryRun != r.DryRun:
		return "dry_run"
	}
	return ""
}

func sameThresholds(a, b *Thresholds) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// diffVars is the first variable, in sorted order, whose value differs between a and b.
func diffVars(a, b map[string]string) (string, bool) {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		av, aok := a[k]
		bv, bok := b[k]
		if aok != bok || av != bv {
			return k, true
		}
	}
	return "", false
}
