package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// batched is an interval's provider when it is a metrics.Batcher: the queries the
// interval's metrics will make, sent together before they are judged, and the answers,
// which query hands out instead of asking again. A query the plan missed goes to the
// provider as usual.
type batched struct {
	metrics.Provider
	answers map[queryKey]metrics.Result
}

type queryKey struct {
	text       string
	start, end int64
	step       time.Duration
}

func keyOf(q metrics.Query) queryKey {
	return queryKey{text: q.Text, start: q.Start.UnixNano(), end: q.End.UnixNano(), step: q.Step}
}

// prefetch returns prov, or, when prov is a metrics.Batcher, a provider holding the
// answers to every query of the interval, asked in one QueryBatch: a backend whose
// budget counts requests (Datadog's) can then answer both cohorts, or several metrics,
// with one request.
func (s *Scheduler) prefetch(ctx context.Context, c *Canary, provName string, prov metrics.Provider, a *config.Analysis, start, end time.Time, since int64, earlier map[string]MetricPoints) metrics.Provider {
	b, ok := prov.(metrics.Batcher)
	if !ok {
		return prov
	}
	qs := plannedQueries(prov, c, a, start, end, since, earlier)
	if len(qs) == 0 {
		return prov
	}
	results, err := s.queryBatch(ctx, c.ID, provName, prov, b, qs)
	answers := make(map[queryKey]metrics.Result, len(qs))
	for i, q := range qs {
		r := metrics.Result{Err: err}
		if err == nil {
			r = results[i]
		}
		answers[keyOf(q)] = r
	}
	return &batched{Provider: prov, answers: answers}
}

// plannedQueries are the queries evalMetric and evalSequential will make for a's
// metrics over [start, end], each once, in the analysis' order: both cohorts of every
// template, from the step after the points already recorded (since, for a metric in
// earlier) or after a sequential metric's newest step. A metric whose template does not
// render is left out (its evaluation says why).
func plannedQueries(prov metrics.Provider, c *Canary, a *config.Analysis, start, end time.Time, since int64, earlier map[string]MetricPoints) []metrics.Query {
	var out []metrics.Query
	seen := map[queryKey]bool{}
	for i := range a.Metrics {
		m := &a.Metrics[i]
		from := start
		tpls := []*metrics.QueryTemplate{m.Template}
		if sequential(m) {
			_, last, err := loadState(c, m, a.Step)
			if err != nil {
				continue
			}
			if !last.IsZero() {
				from = last.Add(a.Step)
			}
			if from.After(end) {
				continue
			}
			if m.Spec.Kind == judge.KindCounts {
				tpls = append(tpls, m.RequestsTemplate)
			}
		} else if _, ok := earlier[m.Name]; ok {
			from = firstStepAfter(start, a.Step, since)
		}
		var qs []metrics.Query
	render:
		for _, tpl := range tpls {
			for _, cohort := range []map[string]string{c.Baseline, c.Canary} {
				text, err := tpl.Render(templateData(prov, cohort, c.Vars))
				if err != nil {
					qs = nil
					break render
				}
				qs = append(qs, metrics.Query{Text: text, Start: from, End: end, Step: a.Step})
			}
		}
		for _, q := range qs {
			if k := keyOf(q); !seen[k] {
				seen[k] = true
				out = append(out, q)
			}
		}
	}
	return out
}

// queryBatch sends qs through the rate limits and the query timeout as one query: the
// scheduler's buckets and the provider's pacing are waited on once, the provider's
// batching decides how many requests it makes.
func (s *Scheduler) queryBatch(ctx context.Context, id, provName string, prov metrics.Provider, b metrics.Batcher, qs []metrics.Query) ([]metrics.Result, error) {
	if err := s.throttle(ctx, id, provName); err != nil {
		return nil, fmt.Errorf("waiting for the rate limit: %w", err)
	}
	if pc, ok := prov.(metrics.Pacer); ok {
		if err := pc.Pace(ctx); err != nil {
			return nil, fmt.Errorf("waiting for the provider's rate limit: %w", err)
		}
	}
	qctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	defer cancel()
	t0 := time.Now() // real time on purpose: this measures I/O, not the schedule
	results := b.QueryBatch(qctx, qs)
	s.m.QueryDuration.WithLabelValues(provName).Observe(time.Since(t0).Seconds())
	if len(results) != len(qs) {
		s.m.QueryErrors.WithLabelValues(provName).Inc()
		return nil, fmt.Errorf("provider %s answered %d of a batch of %d queries", provName, len(results), len(qs))
	}
	for _, r := range results {
		if r.Err != nil {
			s.m.QueryErrors.WithLabelValues(provName).Inc()
		}
	}
	return results, nil
}
