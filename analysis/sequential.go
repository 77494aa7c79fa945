package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// sequential reports whether m is judged by a sequential judge, whose evidence is kept
// in Canary.Sequential and fed only the steps since the last one it holds.
func sequential(m *config.Metric) bool {
	return m.Spec.Kind == judge.KindCounts || m.Spec.Kind == judge.KindHistogram
}

// seqState is what the scheduler needs of judge.CountState and judge.HistogramState.
type seqState interface {
	Result(judge.MetricSpec) judge.MetricResult
}

// canaryHorizon is the judged part of c's lifetime in steps: a canary registered with
// its own lifetime spreads its change points over that, not the analysis' default.
func canaryHorizon(c *Canary, step time.Duration, def int) int {
	if step <= 0 || c.Lifetime <= c.Warmup {
		return def
	}
	return min(max(int((c.Lifetime-c.Warmup)/step), 1), judge.MaxHorizon)
}

// loadState returns m's stored evidence on c, or a new one, and the time of its newest
// step (zero when it has none).
func loadState(c *Canary, m *config.Metric, step time.Duration) (seqState, time.Time, error) {
	spec := m.Spec
	spec.Horizon = canaryHorizon(c, step, spec.Horizon)
	raw, stored := c.Sequential[m.Name]
	switch m.Spec.Kind {
	case judge.KindCounts:
		st, err := judge.NewCountState(spec)
		if err != nil {
			return nil, time.Time{}, err
		}
		if stored {
			if err := json.Unmarshal(raw, st); err != nil {
				return nil, time.Time{}, fmt.Errorf("stored counts state: %w", err)
			}
		}
		return st, lastOf(st.Steps, st.Last), nil
	default:
		st, err := judge.NewHistogramState(spec)
		if err != nil {
			return nil, time.Time{}, err
		}
		if stored {
			if err := json.Unmarshal(raw, st); err != nil {
				return nil, time.Time{}, fmt.Errorf("stored histogram state: %w", err)
			}
		}
		return st, lastOf(st.Steps, st.Last), nil
	}
}

func lastOf(steps int, last time.Time) time.Time {
	if steps == 0 {
		return time.Time{}
	}
	return last
}

// evalSequential judges a counts or histogram metric: it fetches only the steps after
// the newest one the canary's stored evidence holds (from the window's start for the
// first), adds them, and judges the evidence. It returns the new state as JSON (nil when
// the fetch failed: the stored state stays, and the next interval fetches these steps
// again). A replayed step is refused by the judge (judge.ErrStaleStep), so an interval
// judged again after a crash never counts a step twice.
func (s *Scheduler) evalSequential(ctx context.Context, c *Canary, provName string, prov metrics.Provider, m *config.Metric, start, end time.Time, step time.Duration, since int64) (judge.MetricResult, MetricPoints, json.RawMessage) {
	if err := onProviderGrid(prov, provName, start, step); err != nil {
		return errorResult(m, fmt.Sprintf("%s: %v", m.Name, err)), MetricPoints{}, nil
	}
	st, last, err := loadState(c, m, step)
	if err != nil {
		return errorResult(m, fmt.Sprintf("%s: %v", m.Name, err)), MetricPoints{}, nil
	}
	from := start
	if !last.IsZero() {
		from = last.Add(step)
	}
	var pts MetricPoints
	if !from.After(end) {
		tpls := []*metrics.QueryTemplate{m.Template}
		if m.Spec.Kind == judge.KindCounts {
			tpls = append(tpls, m.RequestsTemplate)
		}
		// series[q][cohort]: query q (errors or buckets, then requests) of each cohort.
		series := make([][2]metrics.Series, len(tpls))
		errs := make([][2]error, len(tpls))
		var wg sync.WaitGroup
		for q, tpl := range tpls {
			for i, cohort := range []map[string]string{c.Baseline, c.Canary} {
				text, err := tpl.Render(templateData(prov, cohort, c.Vars))
				if err != nil {
					return errorResult(m, fmt.Sprintf("%s: %v", cohortName(i), err)), MetricPoints{}, nil
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					series[q][i], errs[q][i] = s.query(ctx, c.ID, provName, prov, metrics.Query{Text: text, Start: from, End: end, Step: step})
				}()
			}
		}
		wg.Wait()
		for q := range errs {
			for i, err := range errs[q] {
				if err != nil {
					return errorResult(m, fmt.Sprintf("%s %s: %v", cohortName(i), queryName(m, q), err)), MetricPoints{}, nil
				}
			}
		}
		// A provider may answer beyond the range asked (a step before from was counted
		// already, or lies in the warmup): only [from, end] is added.
		lo, hi := from.UnixMilli(), end.UnixMilli()
		for q := range series {
			for i := range series[q] {
				series[q][i] = within(series[q][i], lo, hi)
			}
		}
		switch st := st.(type) {
		case *judge.CountState:
			steps := countSteps(series[0], series[1])
			// Invalid steps are recorded in the state and make the result an error;
			// stale ones were counted before: neither needs more here.
			_ = st.Add(steps)
			pts = countPoints(m.Name, steps, since)
		case *judge.HistogramState:
			steps, err := histogramSteps(series[0])
			if err != nil {
				return errorResult(m, fmt.Sprintf("%s: %v", m.Name, err)), MetricPoints{}, nil
			}
			_ = st.Add(steps)
		}
	}
	res := st.Result(m.Spec)
	raw, err := json.Marshal(st)
	if err != nil {
		return errorResult(m, fmt.Sprintf("%s: encoding its state: %v", m.Name, err)), MetricPoints{}, nil
	}
	return res, pts, raw
}

// StepAligner is implemented by a provider whose buckets lie on a grid of its own,
// multiples of StepAlignment(step) since the epoch, whatever a query's start (0: on the
// query's own grid, start + k·step). The counts and histogram judges add each step once,
// keyed by its time on the canary's grid; on such a provider a grid that starts off the
// provider's would have every bucket straddle two steps, so those judges refuse it.
type StepAligner interface {
	StepAlignment(step time.Duration) time.Duration
}

// WholeSteps is implemented by a provider that may not answer each step's counts whole
// (a bucket labelled by its start, cut at the window's end): a non-nil error says why,
// and its counts and histogram metrics are that error rather than judged.
type WholeSteps interface {
	WholeSteps() error
}

// onProviderGrid says why a sequential metric cannot be judged on prov from start at
// step, or nil when the provider's buckets are the canary's steps.
func onProviderGrid(prov metrics.Provider, provName string, start time.Time, step time.Duration) error {
	if b, ok := prov.(*batched); ok {
		prov = b.Provider
	}
	if w, ok := prov.(WholeSteps); ok {
		if err := w.WholeSteps(); err != nil {
			return fmt.Errorf("provider %q: %w", provName, err)
		}
	}
	a, ok := prov.(StepAligner)
	if !ok {
		return nil
	}
	unit := a.StepAlignment(step)
	if unit <= 0 || start.UnixNano()%int64(unit) == 0 {
		return nil
	}
	return fmt.Errorf("provider %q puts its %s buckets on multiples of %s since the epoch, and this canary's steps start at %s (its start plus the warmup), off that grid, "+
		"so each bucket would straddle two steps: the counts and histogram judges need a start (plus warmup) on a multiple of %s there",
		provName, step, unit, start.UTC().Format(time.RFC3339Nano), unit)
}

func queryName(m *config.Metric, q int) string {
	switch {
	case m.Spec.Kind == judge.KindCounts && q == 0:
		return "errors query"
	case q == 1:
		return "requests_query"
	}
	return "query"
}

// query sends one cohort's query through the rate limits and the query timeout, unless
// the interval's batch (prefetch) has its answer.
func (s *Scheduler) query(ctx context.Context, id, provName string, prov metrics.Provider, q metrics.Query) (metrics.Series, error) {
	if b, ok := prov.(*batched); ok {
		if r, ok := b.answers[keyOf(q)]; ok {
			return r.Series, r.Err // asked with the interval's other queries
		}
		prov = b.Provider
	}
	if err := s.throttle(ctx, id, provName); err != nil {
		return metrics.Series{}, fmt.Errorf("waiting for the rate limit: %w", err)
	}
	if pc, ok := prov.(metrics.Pacer); ok {
		if err := pc.Pace(ctx); err != nil {
			return metrics.Series{}, fmt.Errorf("waiting for the provider's rate limit: %w", err)
		}
	}
	qctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	defer cancel()
	t0 := time.Now() // real time on purpose: this measures I/O, not the schedule
	out, err := prov.Query(qctx, q)
	s.m.QueryDuration.WithLabelValues(provName).Observe(time.Since(t0).Seconds())
	if err != nil {
		s.m.QueryErrors.WithLabelValues(provName).Inc()
	}
	return out, err
}

// within keeps the points of s in [lo, hi] (Unix ms).
func within(s metrics.Series, lo, hi int64) metrics.Series {
	out := metrics.Series{Streams: make([]metrics.Stream, len(s.Streams)), Warnings: s.Warnings}
	for k, st := range s.Streams {
		out.Streams[k].Labels = st.Labels
		for _, p := range st.Points {
			if p.T >= lo && p.T <= hi {
				out.Streams[k].Points = append(out.Streams[k].Points, p)
			}
		}
	}
	return out
}

// summed adds a cohort's streams per timestamp: counts of several series add up (a
// query that keeps a label, e.g. one series per instance, is pooled this way).
func summed(s metrics.Series) map[int64]float64 {
	out := map[int64]float64{}
	for _, st := range s.Streams {
		for _, p := range st.Points {
			out[p.T] += p.V
		}
	}
	return out
}

// countSteps pairs each cohort's errors and requests per timestamp. An errors series
// absent at a step where the cohort's requests have a point is zero errors (a healthy
// service often has no 5xx series at all); absent requests make the step missing for
// that cohort (NaN), which the judge skips.
func countSteps(errs, reqs [2]metrics.Series) []judge.CountStep {
	var e, n [2]map[int64]float64
	times := map[int64]bool{}
	for i := range 2 {
		e[i], n[i] = summed(errs[i]), summed(reqs[i])
		for t := range n[i] {
			times[t] = true
		}
		for t := range e[i] {
			times[t] = true
		}
	}
	ts := make([]int64, 0, len(times))
	for t := range times {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	steps := make([]judge.CountStep, len(ts))
	for k, t := range ts {
		var co [2]judge.CountCohort
		for i := range 2 {
			co[i] = judge.CountCohort{Errors: math.NaN(), Requests: math.NaN()}
			if v, ok := n[i][t]; ok {
				co[i].Requests, co[i].Errors = v, 0
			}
			if v, ok := e[i][t]; ok {
				co[i].Errors = v
			}
		}
		steps[k] = judge.CountStep{Time: time.UnixMilli(t).UTC(), Baseline: co[0], Canary: co[1]}
	}
	return steps
}

// countPoints are each cohort's error rate per step, after since, for the report.
func countPoints(name string, steps []judge.CountStep, since int64) MetricPoints {
	mp := MetricPoints{Metric: name}
	for _, st := range steps {
		t := st.Time.UnixMilli()
		if t <= since {
			continue
		}
		for i, co := range []judge.CountCohort{st.Baseline, st.Canary} {
			r := co.Errors / co.Requests
			if math.IsNaN(r) || math.IsInf(r, 0) {
				continue
			}
			if i == 0 {
				mp.Baseline = append(mp.Baseline, TimeValue{float64(t), r})
			} else {
				mp.Canary = append(mp.Canary, TimeValue{float64(t), r})
			}
		}
	}
	return mp
}

// histogramSteps turns each cohort's bucket series (one per le) into steps. Series with
// the same le are summed; a series without le, or whose le is not a number, is an error
// naming it.
func histogramSteps(series [2]metrics.Series) ([]judge.HistogramStep, error) {
	var byTime [2]map[int64]map[string]float64
	times := map[int64]bool{}
	for i, s := range series {
		byTime[i] = map[int64]map[string]float64{}
		for _, st := range s.Streams {
			le, ok := st.Labels["le"]
			if !ok || le == "" {
				return nil, fmt.Errorf("%s: the series %v has no le label (the query must keep it: sum by (le) (increase(..._bucket[...])))", cohortName(i), st.Labels)
			}
			for _, p := range st.Points {
				if byTime[i][p.T] == nil {
					byTime[i][p.T] = map[string]float64{}
				}
				byTime[i][p.T][le] += p.V
				times[p.T] = true
			}
		}
	}
	ts := make([]int64, 0, len(times))
	for t := range times {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	steps := make([]judge.HistogramStep, len(ts))
	for k, t := range ts {
		steps[k].Time = time.UnixMilli(t).UTC()
		for i := range 2 {
			m := byTime[i][t]
			if m == nil {
				continue // missing for this cohort
			}
			les := make([]string, 0, len(m))
			for le := range m {
				les = append(les, le)
			}
			slices.Sort(les)
			counts := make([]float64, len(les))
			for j, le := range les {
				counts[j] = m[le]
			}
			b, err := judge.ParseBuckets(les, counts)
			if err != nil {
				return nil, fmt.Errorf("%s at %s: %w", cohortName(i), steps[k].Time.Format(time.RFC3339), err)
			}
			if i == 0 {
				steps[k].Baseline = b
			} else {
				steps[k].Canary = b
			}
		}
	}
	return steps, nil
}
