package eval

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// prefixCache serves the scheduler's queries from one generation per series. The
// scheduler asks each interval for the steps since the previous one (the whole window
// from the end of the warmup at the first judged interval), so a canary of k intervals
// would generate its series k times; the synthetic provider's points depend only on
// (seed, app, signal, cohort, stream, timestamp) and a query's start, so the first query
// generates the series from the anchor (the end of the warmup) up to the end of the
// lifetime and later ones get their part of it, the points a query from the anchor
// returns (TestCacheIsTransparent). Serving every query from the anchor also keeps a
// regression's after counting from the end of the warmup, as the scenarios mean it,
// when the scheduler queries only the newest steps (TestCacheAnchorsAfter).
type prefixCache struct {
	p       *synthetic.Provider
	anchor  time.Time     // where every generation starts: the end of the warmup
	horizon time.Duration // how far past the anchor to generate

	mu      sync.Mutex
	series  map[cacheKey]metrics.Series
	byTrack map[string][]cacheKey // cohort → its keys, to forget a finished run
}

// cacheKey is what a synthetic query's points depend on besides its range.
type cacheKey struct {
	text    string
	startMs int64
	step    time.Duration
}

func newPrefixCache(p *synthetic.Provider, anchor time.Time, horizon time.Duration) *prefixCache {
	return &prefixCache{p: p, anchor: anchor, horizon: horizon, series: map[cacheKey]metrics.Series{}, byTrack: map[string][]cacheKey{}}
}

func (c *prefixCache) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	spec, err := synthetic.ParseQuery(q.Text)
	if err != nil || q.Step <= 0 || q.End.Before(q.Start) {
		return c.p.Query(ctx, q) // the provider reports the error
	}
	// A query on the anchor's grid at or after it is served from the anchor; any other
	// from its own start.
	from := q.Start
	if off := q.Start.Sub(c.anchor); off >= 0 && off%q.Step == 0 {
		from = c.anchor
	}
	key := cacheKey{q.Text, from.UnixMilli(), q.Step}
	startMs, endMs := q.Start.UnixMilli(), q.End.UnixMilli()
	c.mu.Lock()
	s, ok := c.series[key]
	c.mu.Unlock()
	// A grid point in (last, end] missing means the cached series is too short.
	if ok && lastT(s)+q.Step.Milliseconds() > endMs {
		return part(s, startMs, endMs), nil
	}
	full := q
	full.Start = from
	if e := from.Add(c.horizon); e.After(full.End) {
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
	return part(s, startMs, endMs), nil
}

func lastT(s metrics.Series) int64 {
	if len(s.Streams) == 0 || len(s.Streams[0].Points) == 0 {
		return -1 << 63
	}
	pts := s.Streams[0].Points
	return pts[len(pts)-1].T
}

// part is s from startMs to endMs; the slices are capped so that an append by the
// caller copies.
func part(s metrics.Series, startMs, endMs int64) metrics.Series {
	out := metrics.Series{Streams: make([]metrics.Stream, len(s.Streams)), Warnings: s.Warnings}
	for i, st := range s.Streams {
		lo := sort.Search(len(st.Points), func(i int) bool { return st.Points[i].T >= startMs })
		hi := sort.Search(len(st.Points), func(i int) bool { return st.Points[i].T > endMs })
		hi = max(hi, lo)
		out.Streams[i] = metrics.Stream{Labels: st.Labels, Points: st.Points[lo:hi:hi]}
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
