package analysis

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/canaryd/canaryd/config"
)

// limiters are the token buckets queries wait on: one per canary (Options.CanaryRateLimit)
// and one per provider (Env.RateLimits), so that a canary registered with a start far in
// the past, or many canaries at once, catch up at a bounded rate instead of in a burst.
// Buckets run on the scheduler's clock.
type limiters struct {
	mu       sync.Mutex
	canary   map[string]*rate.Limiter
	provider map[string]*rate.Limiter
}

// bucket returns m[key], made or updated to rl; nil when rl is no limit.
func bucket(m map[string]*rate.Limiter, key string, rl config.RateLimit, now time.Time) *rate.Limiter {
	if rl.QPS <= 0 || rl.Burst <= 0 {
		delete(m, key)
		return nil
	}
	l, ok := m[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(rl.QPS), rl.Burst)
		m[key] = l
		return l
	}
	if l.Limit() != rate.Limit(rl.QPS) {
		l.SetLimitAt(now, rate.Limit(rl.QPS))
	}
	if l.Burst() != rl.Burst {
		l.SetBurstAt(now, rl.Burst)
	}
	return l
}

// throttle waits until canary id and provider prov may each send one more query. The
// canary's token is taken first, so that a canary waiting on its own bucket does not hold
// provider tokens others could use.
func (s *Scheduler) throttle(ctx context.Context, id, prov string) error {
	env := s.env.Load()
	now := s.o.Clock.Now()
	s.lim.mu.Lock()
	cl := bucket(s.lim.canary, id, s.o.CanaryRateLimit, now)
	var pl *rate.Limiter
	if env != nil {
		pl = bucket(s.lim.provider, prov, env.RateLimits[prov], now)
	}
	s.lim.mu.Unlock()
	if cl != nil {
		if err := s.take(ctx, cl, "canary"); err != nil {
			return err
		}
	}
	if pl != nil {
		return s.take(ctx, pl, "provider")
	}
	return nil
}

// take reserves a token of l and waits on the scheduler's clock until it is due.
func (s *Scheduler) take(ctx context.Context, l *rate.Limiter, kind string) error {
	now := s.o.Clock.Now()
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return nil // burst < 1 is refused by the config; never block forever
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	s.m.QueryThrottled.WithLabelValues(kind).Add(d.Seconds())
	select {
	case <-s.o.Clock.After(d):
		return nil
	case <-ctx.Done():
		r.CancelAt(s.o.Clock.Now())
		return ctx.Err()
	}
}

// forgetCanary drops an ended canary's bucket.
func (s *Scheduler) forgetCanary(id string) {
	s.lim.mu.Lock()
	delete(s.lim.canary, id)
	s.lim.mu.Unlock()
}
