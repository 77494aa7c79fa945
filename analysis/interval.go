package analysis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// errStale: the canary moved on (ended, or another interval was recorded) while this
// interval was being judged; the result is dropped.
var errStale = errors.New("canary changed while judging")

var scratchPool = sync.Pool{New: func() any { return new(judge.Scratch) }}

// judge judges one interval of one canary and records it.
func (s *Scheduler) judge(ctx context.Context, it dueItem) {
	log := s.log.With(zap.String("canary", it.id), zap.Int("interval", it.index))
	if ok, lapsed := s.holds(it.id); !ok {
		if lapsed {
			// The lease could not be renewed (the store is lost): wait, and judge it if
			// the lease is still ours once renewed; another replica takes it otherwise.
			it.at = s.o.Clock.Now().Add(s.o.RetryDelay)
			s.schedule(it)
		}
		return // another replica holds it
	}
	c, err := s.o.Store.Get(ctx, it.id)
	switch {
	case errors.Is(err, ErrNotFound):
		return
	case err != nil:
		s.storeFailed(ctx, it, log, err)
		return
	case c.Status != StatusRunning:
		return
	case c.NextIndex > it.index:
		// Queued twice (a retry raced a record); follow the stored state.
		log.Debug("interval already judged", zap.Int("next", c.NextIndex))
		return
	case c.NextIndex < it.index:
		// The store is behind what it acknowledged: a database that lost its last commits
		// (an asynchronous standby promoted, synchronous_commit off, a restore). Judge
		// from where it is, or the canary would wait forever for an interval never queued.
		log.Warn("the store lost recorded intervals; judging again from its next", zap.Int("next", c.NextIndex))
		s.schedule(dueItem{id: c.ID, index: c.NextIndex, at: c.IntervalEnd(c.NextIndex)})
		return
	}
	log = log.With(zap.String("analysis", c.Analysis))
	a, err := s.o.Snapshots.Analysis(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		log.Error("analysis snapshot unusable", zap.Error(err))
		if _, err := s.finish(ctx, c.ID, ActionVerdict, StatusError, CauseErrors, fmt.Sprintf("the analysis this canary started with cannot be read: %v", err), true); err != nil && !errors.Is(err, ErrFinished) {
			log.Error("end canary", zap.Error(err))
		}
		return
	}

	start, end := c.Start.Add(c.Warmup), c.IntervalEnd(it.index)
	// Points at or before the previous interval's end were stored with it, unless that
	// interval fell in the warmup and was never judged.
	since := int64(math.MinInt64)
	if prev := c.IntervalEnd(it.index - 1); it.index > 1 && prev.After(start) {
		since = prev.UnixMilli()
	}
	var earlier map[string]MetricPoints
	if since != math.MinInt64 && slices.ContainsFunc(a.Metrics, func(m config.Metric) bool { return !sequential(&m) }) {
		earlier = s.earlierPoints(ctx, c, it.index, log)
	}
	results, points, states := s.evaluate(ctx, c, a, start, end, since, earlier, log)
	if ctx.Err() != nil {
		return // shutting down: judged again after the restart
	}
	score := judge.Score(results, a.Groups, c.ScoreThresholds(a.Score))
	now := s.o.Clock.Now()
	r := &IntervalResult{CanaryID: c.ID, Index: it.index, Start: start, End: end, JudgedAt: now, Score: score, Metrics: results, Points: points}
	var act *Action
	var detected bool
	updated, err := s.o.Store.RecordInterval(ctx, r, func(c *Canary) ([]Action, error) {
		if c.Status != StatusRunning || c.NextIndex != it.index {
			return nil, errStale
		}
		detected = false
		act = s.advance(c, it.index, score, results, now)
		if score.Verdict == judge.VerdictFail && c.FirstFailAt == nil {
			c.FirstFailAt, detected = &now, true
		}
		keepStates(c, states)
		if act != nil {
			startRecovery(c, a, now)
		}
		if act == nil {
			return nil, nil
		}
		return []Action{*act}, nil
	})
	switch {
	case errors.Is(err, errStale), errors.Is(err, ErrIntervalExists), errors.Is(err, ErrNotFound):
		log.Info("interval result dropped", zap.Error(err))
		return
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		s.storeFailed(ctx, it, log, err)
		return
	}
	s.m.Intervals.WithLabelValues(c.Analysis, string(score.Verdict)).Inc()
	if detected {
		s.m.TimeToDetect.WithLabelValues(c.Analysis).Observe(updated.FirstFailAt.Sub(updated.Start).Seconds())
	}
	for _, res := range results {
		s.m.Classifications.WithLabelValues(c.Analysis, res.Name, string(res.Classification)).Inc()
	}
	log.Debug("interval judged", zap.Float64("score", score.Score), zap.String("verdict", string(score.Verdict)),
		zap.Int("errors", score.Errors))
	if updated.Status.Final() {
		s.ended(ctx, updated, *act)
		return
	}
	s.m.Score.WithLabelValues(updated.ID, updated.Name, updated.Analysis).Set(score.Score)
	s.schedule(dueItem{id: updated.ID, index: updated.NextIndex, at: updated.IntervalEnd(updated.NextIndex)})
}

func (s *Scheduler) storeFailed(ctx context.Context, it dueItem, log *zap.Logger, err error) {
	s.m.StoreErrors.Inc()
	log.Error("store failed; retrying the interval", zap.Error(err), zap.Duration("retry_in", s.o.RetryDelay))
	it.at = s.o.Clock.Now().Add(s.o.RetryDelay)
	s.schedule(it)
}

// advance applies a judged interval to c and returns the action when c ends. It depends
// only on its arguments, as a Mutation must.
func (s *Scheduler) advance(c *Canary, index int, score judge.ScoreResult, results []judge.MetricResult, now time.Time) *Action {
	c.UpdatedAt = now
	c.NextIndex = index + 1
	sc := score.Score
	c.Score, c.Verdict = &sc, score.Verdict
	if score.Errors > 0 {
		c.ConsecutiveErrors++
	} else {
		c.ConsecutiveErrors = 0
	}
	var status Status
	var cause Cause
	var reason string
	switch {
	case len(score.CriticalFailures) > 0:
		status, cause = StatusFail, CauseCritical
		reason = fmt.Sprintf("critical metric failed in interval %d: %s", index, metricReasons(results, func(r judge.MetricResult) bool {
			return r.Critical && r.Failed()
		}))
	case c.ConsecutiveErrors >= s.o.MaxConsecutiveErrors:
		status, cause = StatusError, CauseErrors
		reason = fmt.Sprintf("%d intervals in a row had metrics in error (limit %d): %s", c.ConsecutiveErrors, s.o.MaxConsecutiveErrors,
			metricReasons(results, func(r judge.MetricResult) bool { return r.Classification == judge.ClassError }))
	case index >= c.Intervals:
		// The last interval judges the whole window: its verdict is the canary's.
		cause = CauseLifetime
		switch score.Verdict {
		case judge.VerdictPass:
			status = StatusPass
		case judge.VerdictMarginal:
			status = StatusMarginal
		case judge.VerdictFail:
			status = StatusFail
		case judge.VerdictUnjudged:
			status = StatusError
		default:
			// No data is never a pass.
			status, cause = StatusError, CauseNoData
		}
		reason = fmt.Sprintf("lifetime over; last interval scored %.1f: %s", score.Score, score.Reason)
		unjudged := func(r judge.MetricResult) bool { return r.Critical && r.Unjudged() }
		switch {
		case cause == CauseNoData:
			reason = fmt.Sprintf("lifetime over with no metric to score in the last interval: %s", score.Reason)
		case slices.ContainsFunc(results, unjudged):
			// A critical metric that cannot be judged at the end never lets the canary
			// pass, whatever the score says (the judge's rule, held here too).
			if status == StatusPass || status == StatusMarginal {
				status = StatusError
			}
			cause = CauseUnjudged
			reason = fmt.Sprintf("lifetime over; critical metric could not be judged in the last interval (%d): %s; interval scored %.1f: %s",
				index, metricReasons(results, unjudged), score.Score, score.Reason)
		}
	default:
		return nil
	}
	c.Status, c.Reason, c.EndedAt = status, reason, &now
	return &Action{CanaryID: c.ID, Time: now, Kind: ActionVerdict, Status: status, Cause: cause, Reason: reason, Actuate: !c.DryRun}
}

func metricReasons(results []judge.MetricResult, keep func(judge.MetricResult) bool) string {
	var parts []string
	for _, r := range results {
		if keep(r) {
			parts = append(parts, r.Name+": "+r.Reason)
		}
	}
	return strings.Join(parts, "; ")
}

// keepStates stores the sequential metrics' new evidence on c, in the transaction that
// records the interval, or drops all of it when c has ended.
func keepStates(c *Canary, states map[string]json.RawMessage) {
	if c.Status.Final() {
		c.Sequential = nil
		return
	}
	if len(states) == 0 {
		return
	}
	if c.Sequential == nil {
		c.Sequential = make(map[string]json.RawMessage, len(states))
	}
	for name, raw := range states {
		c.Sequential[name] = raw
	}
}

// earlierPoints are the points the judged intervals before index recorded, by metric,
// for the metrics every one of them recorded whole: those are read from the record and
// only the steps after since are queried. A metric missing from one of them (its query
// failed, or the record predates Whole) is queried over the whole window again.
func (s *Scheduler) earlierPoints(ctx context.Context, c *Canary, index int, log *zap.Logger) map[string]MetricPoints {
	recorded, err := s.o.Store.Intervals(ctx, c.ID)
	if err != nil {
		log.Warn("earlier intervals unreadable; querying whole windows", zap.Error(err))
		return nil
	}
	first := c.FirstJudged()
	if len(recorded) != index-first {
		return nil
	}
	whole := map[string]int{}
	for k, r := range recorded {
		if r.Index != first+k {
			return nil
		}
		for _, mp := range r.Points {
			if mp.Whole {
				whole[mp.Metric]++
			}
		}
	}
	out := map[string]MetricPoints{}
	for _, mp := range Series(recorded) {
		if whole[mp.Metric] == len(recorded) {
			mp.Whole = true
			out[mp.Metric] = mp
		}
	}
	return out
}

// evaluate queries and classifies every metric of an interval, concurrently.
// It also returns each metric's points after since (Unix ms), and the new evidence of
// the sequential metrics whose steps were fetched, by name. A metric in earlier has
// only its steps after since queried.
func (s *Scheduler) evaluate(ctx context.Context, c *Canary, a *config.Analysis, start, end time.Time, since int64, earlier map[string]MetricPoints, log *zap.Logger) ([]judge.MetricResult, []MetricPoints, map[string]json.RawMessage) {
	env := s.env.Load()
	var prov metrics.Provider
	if env != nil {
		prov = env.Providers[a.Provider]
	}
	if prov != nil {
		prov = s.prefetch(ctx, c, a.Provider, prov, a, start, end, since, earlier)
	}
	results := make([]judge.MetricResult, len(a.Metrics))
	points := make([]MetricPoints, len(a.Metrics))
	raws := make([]json.RawMessage, len(a.Metrics))
	var wg sync.WaitGroup
	for i := range a.Metrics {
		m := &a.Metrics[i]
		if prov == nil {
			results[i] = errorResult(m, fmt.Sprintf("provider %q is not configured", a.Provider))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sequential(m) {
				results[i], points[i], raws[i] = s.evalSequential(ctx, c, a.Provider, prov, m, start, end, a.Step, since)
			} else {
				var prior *MetricPoints
				if mp, ok := earlier[m.Name]; ok {
					prior = &mp
				}
				results[i], points[i] = s.evalMetric(ctx, c, a.Provider, prov, m, start, end, a.Step, since, prior)
			}
			if results[i].Classification == judge.ClassError && ctx.Err() == nil {
				log.Warn("metric in error", zap.String("metric", m.Name), zap.String("reason", results[i].Reason))
			}
		}()
	}
	wg.Wait()
	kept := points[:0]
	for _, p := range points {
		if p.Metric != "" {
			kept = append(kept, p)
		}
	}
	states := map[string]json.RawMessage{}
	for i, raw := range raws {
		if raw != nil {
			states[a.Metrics[i].Name] = raw
		}
	}
	return results, kept, states
}

func errorResult(m *config.Metric, reason string) judge.MetricResult {
	return judge.MetricResult{
		Name: m.Name, Group: m.Group, Groups: m.Groups, Muted: m.Spec.Muted, Kind: m.Spec.Kind, Classification: judge.ClassError,
		Critical: m.Spec.Critical, MustHaveData: m.Spec.MustHaveData, Reason: reason,
	}
}

// evalMetric judges one window metric over [start, end]. With prior (the points earlier
// intervals recorded whole, up to since) only the steps after since are queried.
func (s *Scheduler) evalMetric(ctx context.Context, c *Canary, provName string, prov metrics.Provider, m *config.Metric, start, end time.Time, step time.Duration, since int64, prior *MetricPoints) (judge.MetricResult, MetricPoints) {
	from := start
	if prior != nil {
		from = firstStepAfter(start, step, since)
	}
	var series [2]metrics.Series
	var errs [2]error
	var wg sync.WaitGroup
	for i, cohort := range []map[string]string{c.Baseline, c.Canary} {
		text, err := m.Template.Render(templateData(prov, cohort, c.Vars))
		if err != nil {
			return errorResult(m, fmt.Sprintf("%s: %v", cohortName(i), err)), MetricPoints{}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			series[i], errs[i] = s.query(ctx, c.ID, provName, prov, metrics.Query{Text: text, Start: from, End: end, Step: step})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return errorResult(m, fmt.Sprintf("%s query: %v", cohortName(i), err)), MetricPoints{}
		}
	}
	if prior != nil {
		// A provider may answer beyond the range asked: the steps up to since are read
		// from the record.
		for i := range series {
			series[i] = within(series[i], since+1, end.UnixMilli())
		}
	}
	// One value per timestamp for each cohort: what the window judges read and what the
	// record keeps.
	bp, cp := merged(series[0]), merged(series[1])
	whole := finite(bp) && finite(cp)
	if prior != nil {
		// A series that stopped is not judged on its old points: a canary whose pods
		// crashed and stopped reporting would pass on what it showed before.
		for i, stopped := range []bool{len(prior.Baseline) > 0 && len(bp) == 0, len(prior.Canary) > 0 && len(cp) == 0} {
			if stopped {
				res := errorResult(m, fmt.Sprintf("%s: no data: the %s has no point after %s (its earlier points are not judged alone)",
					m.Name, cohortName(i), time.UnixMilli(since).UTC().Format(time.RFC3339)))
				res.Classification = judge.ClassNoData
				return res, MetricPoints{Metric: m.Name, Whole: whole}
			}
		}
	}
	var bv, cv []float64
	switch m.Spec.Kind {
	case judge.KindRatio:
		if prior != nil {
			bp, cp = append(priorPoints(prior.Baseline), bp...), append(priorPoints(prior.Canary), cp...)
		}
		bv, cv = alignByTime(bp, cp)
	case judge.KindThreshold:
		if prior != nil {
			bp, cp = append(priorPoints(prior.Baseline), bp...), append(priorPoints(prior.Canary), cp...)
		}
		bv, cv = values(bp), values(cp)
	default:
		// The rank test reads every stream's points; merged points are all of them only
		// when each cohort has one stream.
		whole = whole && len(series[0].Streams) <= 1 && len(series[1].Streams) <= 1
		if prior != nil {
			bv, cv = priorValues(prior.Baseline), priorValues(prior.Canary)
		}
		bv, cv = series[0].AppendValues(bv), series[1].AppendValues(cv)
	}
	spec := m.Spec
	spec.Looks = c.Looks()
	sc := scratchPool.Get().(*judge.Scratch)
	res := sc.Classify(spec, bv, cv)
	scratchPool.Put(sc)
	return res, MetricPoints{Metric: m.Name, Baseline: newPoints(bp, since), Canary: newPoints(cp, since), Whole: whole}
}

// firstStepAfter is the first point of the step grid that starts at start (the grid a
// query over the whole window answers on) after since (Unix ms).
func firstStepAfter(start time.Time, step time.Duration, since int64) time.Time {
	ms := step.Milliseconds()
	if ms <= 0 || since < start.UnixMilli() {
		return start
	}
	k := (since-start.UnixMilli())/ms + 1
	return start.Add(time.Duration(k) * step)
}

// finite reports whether every point's value is finite (the record leaves the others out).
func finite(pts []metrics.Point) bool {
	for _, p := range pts {
		if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
			return false
		}
	}
	return true
}

func priorPoints(tv []TimeValue) []metrics.Point {
	out := make([]metrics.Point, len(tv))
	for i, p := range tv {
		out[i] = metrics.Point{T: int64(p[0]), V: p[1]}
	}
	return out
}

func priorValues(tv []TimeValue) []float64 {
	out := make([]float64, len(tv))
	for i, p := range tv {
		out[i] = p[1]
	}
	return out
}

// newPoints is a merged series' points after since, finite values only.
func newPoints(pts []metrics.Point, since int64) []TimeValue {
	var out []TimeValue
	for _, p := range pts {
		if p.T > since && !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
			out = append(out, TimeValue{float64(p.T), p.V})
		}
	}
	return out
}

func cohortName(i int) string {
	if i == 0 {
		return "baseline"
	}
	return "canary"
}

// merged returns one point per timestamp in time order: the mean of the streams that have
// a point there. Window judges need one value per instant, so several series of a cohort
// are averaged rather than concatenated.
func merged(s metrics.Series) []metrics.Point {
	if len(s.Streams) == 1 {
		pts := slices.Clone(s.Streams[0].Points)
		slices.SortStableFunc(pts, func(a, b metrics.Point) int { return cmp.Compare(a.T, b.T) })
		return pts
	}
	sum := map[int64]float64{}
	n := map[int64]int{}
	for _, st := range s.Streams {
		for _, p := range st.Points {
			sum[p.T] += p.V
			n[p.T]++
		}
	}
	out := make([]metrics.Point, 0, len(sum))
	for t, v := range sum {
		out = append(out, metrics.Point{T: t, V: v / float64(n[t])})
	}
	slices.SortFunc(out, func(a, b metrics.Point) int { return cmp.Compare(a.T, b.T) })
	return out
}

// values are a merged series' values, in time order.
func values(pts []metrics.Point) []float64 {
	out := make([]float64, len(pts))
	for i, p := range pts {
		out[i] = p.V
	}
	return out
}

// alignByTime keeps the timestamps both cohorts have, so that baseline[i] and canary[i]
// are the same instant, as the ratio judge requires.
func alignByTime(bp, cp []metrics.Point) (bv, cv []float64) {
	i, j := 0, 0
	for i < len(bp) && j < len(cp) {
		switch {
		case bp[i].T < cp[j].T:
			i++
		case bp[i].T > cp[j].T:
			j++
		default:
			bv, cv = append(bv, bp[i].V), append(cv, cp[j].V)
			i++
			j++
		}
	}
	return bv, cv
}
