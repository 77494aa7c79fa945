package analysis

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Leases split the running canaries between replicas that share one store: a replica
// judges a canary only while it holds the canary's lease. A lease lasts TTL after its
// last renewal (by the store's clock); a replica that stops renewing loses its leases
// and the others take them, resuming each canary at its stored next interval. The
// store's RecordInterval still records an interval once, whoever judges it.
type Leases interface {
	// Acquire takes the lease of a canary this replica registered, unless a live replica
	// holds it.
	Acquire(ctx context.Context, id string) (bool, error)
	// Renew extends this replica's leases, takes free or expired ones up to its share of
	// the running canaries, and returns what it holds.
	Renew(ctx context.Context) (LeaseState, error)
	// Release gives up the lease of a canary that ended.
	Release(ctx context.Context, id string) error
	// ReleaseAll gives up every lease, at a clean shutdown.
	ReleaseAll(ctx context.Context) error
	// TTL is how long a lease lasts after its last renewal.
	TTL() time.Duration
}

// LeaseState is what a renewal found: the canaries this replica holds, how many replicas
// are alive, how many canaries run.
type LeaseState struct {
	Held     []string
	Replicas int
	Running  int
}

// RunningCounter is optionally implemented by a shared Store: its running canaries per
// analysis, which each renewal reads so that server.max_running_per_analysis holds
// across replicas (within a renewal), not per replica.
type RunningCounter interface {
	RunningByAnalysis(ctx context.Context) (map[string]int, error)
}

// leaseState is the scheduler's side of its leases (under Scheduler.mu).
type leaseState struct {
	held map[string]bool
	// validUntil is when the leases lapse without a renewal, on this process' monotonic
	// clock: the start of the last successful renewal plus the TTL (the store's expiry is
	// at least that late, as its clock read now() after the renewal started).
	validUntil time.Time
}

// holds reports whether the scheduler may judge canary id now: it holds the lease (or
// runs without leases) and the lease has not lapsed. lapsed is true when it held the
// lease but could not renew it in time (the store is lost): the interval waits.
func (s *Scheduler) holds(id string) (ok, lapsed bool) {
	if s.o.Leases == nil {
		return true, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leases.held[id] {
		return false, false
	}
	if time.Now().After(s.leases.validUntil) {
		return false, true
	}
	return true, false
}

// leaseEvery is how often leases are renewed: three renewals fit in a TTL, so one lost
// renewal never loses a lease.
func leaseEvery(ttl time.Duration) time.Duration { return max(ttl/3, 10*time.Millisecond) }

// renewLeases renews the leases once and queues the canaries newly held (taken from a
// dead replica, or freed by a busy one) at their stored next interval.
func (s *Scheduler) renewLeases(ctx context.Context) {
	began := time.Now()
	st, err := s.o.Leases.Renew(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.m.LeaseRenewals.WithLabelValues("error").Inc()
			s.log.Warn("renew leases; retrying", zap.Error(err), zap.Duration("in", leaseEvery(s.o.Leases.TTL())))
		}
		return
	}
	s.m.LeaseRenewals.WithLabelValues("ok").Inc()
	var gained []string
	s.mu.Lock()
	s.leases.validUntil = began.Add(s.o.Leases.TTL())
	held := make(map[string]bool, len(st.Held))
	for _, id := range st.Held {
		held[id] = true
		if !s.leases.held[id] {
			gained = append(gained, id)
		}
	}
	lost := 0
	for id := range s.leases.held {
		if !held[id] {
			lost++
		}
	}
	s.leases.held = held
	s.mu.Unlock()
	s.m.LeasesHeld.Set(float64(len(st.Held)))
	s.m.Replicas.Set(float64(st.Replicas))
	if counts, err := s.o.Store.CountByStatus(ctx); err == nil {
		s.mu.Lock()
		s.counts = counts
		s.syncCountsLocked()
		s.mu.Unlock()
	}
	if rc, ok := s.o.Store.(RunningCounter); ok {
		if by, err := rc.RunningByAnalysis(ctx); err == nil {
			s.mu.Lock()
			s.runningBy = by
			s.mu.Unlock()
		}
	}
	for _, id := range gained {
		c, err := s.o.Store.Get(ctx, id)
		if err != nil || c.Status != StatusRunning {
			continue // gone or ended meanwhile; the next renewal drops its lease
		}
		if c.Score != nil {
			s.m.Score.WithLabelValues(c.ID, c.Name, c.Analysis).Set(*c.Score)
		}
		s.schedule(dueItem{id: c.ID, index: c.NextIndex, at: c.IntervalEnd(c.NextIndex)})
	}
	if len(gained) > 0 || lost > 0 {
		s.log.Info("leases changed", zap.Int("held", len(st.Held)), zap.Int("gained", len(gained)), zap.Int("lost", lost),
			zap.Int("replicas", st.Replicas), zap.Int("running", st.Running))
	}
}

// leaseLoop renews the leases until ctx ends.
func (s *Scheduler) leaseLoop(ctx context.Context) {
	defer s.done.Done()
	t := time.NewTicker(leaseEvery(s.o.Leases.TTL()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.renewLeases(ctx)
		}
	}
}

// acquired records a lease Register took.
func (s *Scheduler) acquired(id string) {
	s.mu.Lock()
	if s.leases.held == nil {
		s.leases.held = map[string]bool{}
	}
	s.leases.held[id] = true
	s.mu.Unlock()
}

// release gives up the lease of a canary that ended.
func (s *Scheduler) release(ctx context.Context, id string) {
	if s.o.Leases == nil {
		return
	}
	s.mu.Lock()
	delete(s.leases.held, id)
	n := len(s.leases.held)
	s.mu.Unlock()
	s.m.LeasesHeld.Set(float64(n))
	if err := s.o.Leases.Release(context.WithoutCancel(ctx), id); err != nil {
		s.log.Warn("release lease; the next renewal drops it", zap.String("canary", id), zap.Error(err))
	}
}
