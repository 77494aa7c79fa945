package eval

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// prefixCache serves the scheduler's re-queries from one generation per series. The
// scheduler asks each interval for the whole window from the end of the warmup, so a
// canary of k intervals would generate its series k times; the synthetic provider's
// points depend only on (seed, app, signal, cohort, stream, timestamp) and a query's
// start, so the first query generates the series up to the end of the lifetime and later
// ones get its prefix, the same points a direct query returns (TestCacheIsTransparent).
type prefixCache struct {
	p       *synthetic.Provider
	horizon time.Duration // how far past a query's start to generate

	mu      sync.Mutex
	series  map[cacheKey]metrics.Series
	byTrack map[string][]cacheKey // cohort → its keys, to forget a finished run
}

// cacheKey is what a synthetic query's points depend on besides its end.
type cacheKey struct {
	text    string
	startMs int64
	step    time.Duration
}

func newPrefixCache(p *synthetic.Provider, horizon time.Duration) *prefixCache {
	return &prefixCache{p: p, horizon: horizon, series: map[cacheKey]metrics.Series{}, byTrack: map[string][]cacheKey{}}
}

func (c *prefixCache) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	key := cacheKey{q.Text, q.Start.UnixMilli(), q.Step}
	endMs := q.End.UnixMilli()
	c.mu.Lock()
	s, ok := c.series[key]
	c.mu.Unlock()
	// A grid point in (last, end] missing means the cached series is too short.
	if ok && q.Step > 0 && lastT(s)+q.Step.Milliseconds() > endMs {
		return prefix(s, endMs), nil
	}
	spec, err := synthetic.ParseQuery(q.Text)
	if err != nil || q.Step <= 0 || q.End.Before(q.Start) {
		return c.p.Query(ctx, q) // the provider reports the error
	}
	full := q
	if e := q.Start.Add(c.horizon); e.After(full.End) {
		full.End = e
	}
	if s, err = c.p.Query(ctx, full); err != nil {
		return metrics.Series{}, err
	}
	c.mu.Lock()
	if _, had := c.series[key]; !had {
		c.byTrack[spec.Cohort] = append(c.byTrack[spec.Cohort], key)
	}
	c.series[key] = s
	c.mu.Unlock()
	return prefix(s, endMs), nil
}

func lastT(s metrics.Series) int64 {
	if len(s.Streams) == 0 || len(s.Streams[0].Points) == 0 {
		return -1 << 63
	}
	pts := s.Streams[0].Points
	return pts[len(pts)-1].T
}

// prefix is s up to endMs; the slices are capped so that an append by the caller copies.
func prefix(s metrics.Series, endMs int64) metrics.Series {
	out := metrics.Series{Streams: make([]metrics.Stream, len(s.Streams)), Warnings: s.Warnings}
	for i, st := range s.Streams {
		n := sort.Search(len(st.Points), func(i int) bool { return st.Points[i].T > endMs })
		out.Streams[i] = metrics.Stream{Labels: st.Labels, Points: st.Points[:n:n]}
	}
	return out
}

// forget drops a finished run's series.
func (c *prefixCache) forget(cohorts ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, co := range cohorts {
		for _, k := range c.byTrack[co] {
			delete(c.series, k)
		}
		delete(c.byTrack, co)
	}
}
