package datadog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v1query"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v2query"
)

var _ metrics.Batcher = (*Provider)(nil)

// unit is one query of a batch as it is sent: a query as rendered, or, with cohort_tag,
// the cohorts' queries of one metric merged into one grouped by the tag.
type unit struct {
	q       metrics.Query // what is sent: the merged text for a merged unit
	members []int         // the batch's queries it answers
	values  []string      // a merged unit's cohort value of each member; nil otherwise
	parsed  v1query.Cohorted
}

// QueryBatch answers the queries of one canary's interval (metrics.Batcher). With
// cohort_tag, queries that differ only in that tag's value (the two cohorts of a
// metric) are one query on all their values grouped by the tag, whose series are split
// back by the tag's value in their tag_set (V1) or group_tags (V2): a series with a value
// none of them has, or without the tag, is dropped and counted in a warning; a cohort
// with no series is no data. Any other query is sent as Query sends it.
func (p *Provider) QueryBatch(ctx context.Context, qs []metrics.Query) []metrics.Result {
	out := make([]metrics.Result, len(qs))
	units := p.plan(qs, out)
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(ctx, u, out)
		}()
	}
	wg.Wait()
	return out
}

// plan groups the valid queries of qs into units; an invalid one gets its error in out.
func (p *Provider) plan(qs []metrics.Query, out []metrics.Result) []unit {
	var units []unit
	merge := map[string]int{} // a cohorted query's key and window: its unit
	for i, q := range qs {
		if err := q.Validate(); err != nil {
			out[i].Err = fmt.Errorf("datadog: %w", err)
			continue
		}
		if p.cfg.CohortTag != "" && !v2query.IsJSON(q.Text) {
			if c, err := v1query.ParseCohorted(q.Text, p.cfg.CohortTag); err == nil {
				key := fmt.Sprintf("%s\x00%d\x00%d\x00%d", c.Key(), q.Start.UnixNano(), q.End.UnixNano(), q.Step)
				if j, ok := merge[key]; ok {
					units[j].members = append(units[j].members, i)
					units[j].values = append(units[j].values, c.Value())
					continue
				}
				merge[key] = len(units)
				units = append(units, unit{q: q, members: []int{i}, values: []string{c.Value()}, parsed: c})
				continue
			}
		}
		units = append(units, unit{q: q, members: []int{i}})
	}
	for j := range units {
		u := &units[j]
		if len(u.members) < 2 {
			u.values = nil // alone: sent as rendered
			continue
		}
		vals := slices.Clone(u.values)
		slices.Sort(vals)
		u.q.Text = u.parsed.Merge(p.cfg.CohortTag, slices.Compact(vals))
	}
	return units
}

// run sends one unit and puts its answers in out.
func (p *Provider) run(ctx context.Context, u unit, out []metrics.Result) {
	if u.values == nil {
		s, err := p.fetch(ctx, u.q)
		out[u.members[0]] = metrics.Result{Series: s, Err: err}
		return
	}
	parts, err := p.fetchSplit(ctx, u)
	for k, i := range u.members {
		if err != nil {
			out[i] = metrics.Result{Err: err}
			continue
		}
		out[i] = metrics.Result{Series: parts[k]}
	}
}

// fetchSplit runs a merged unit and splits its answer per member.
func (p *Provider) fetchSplit(ctx context.Context, u unit) ([]metrics.Series, error) {
	tag := p.cfg.CohortTag
	out := make([]metrics.Series, len(u.values))
	unknown := 0
	if p.v2(u.q) {
		s, err := p.queryV2(ctx, u.q)
		if err != nil {
			return nil, err
		}
		for _, st := range s.Streams {
			v, ok := st.Labels[tag]
			if !ok || !slices.Contains(u.values, v) {
				unknown++
				continue
			}
			for k, w := range u.values {
				if w == v {
					out[k].Streams = append(out[k].Streams, st)
				}
			}
		}
		for k := range out {
			out[k].Warnings = slices.Clone(s.Warnings)
		}
	} else {
		a, err := p.queryV1(ctx, u.q)
		if err != nil {
			return nil, err
		}
		// The answer's own shape and errors first, as for a query alone.
		if _, err := toSeries(&a.resp); err != nil {
			return nil, fmt.Errorf("datadog: query %q: %w", a.text, err)
		}
		groups := map[string][]datadogV1.MetricsQueryMetadata{}
		for _, s := range a.resp.Series {
			v, ok := tagValue(s.TagSet, tag)
			if !ok || !slices.Contains(u.values, v) {
				unknown++
				continue
			}
			groups[v] = append(groups[v], s)
		}
		for k, v := range u.values {
			part := a.resp
			part.Series = append([]datadogV1.MetricsQueryMetadata{}, groups[v]...)
			if out[k], err = a.series(&part); err != nil {
				return nil, err
			}
		}
	}
	if unknown > 0 {
		w := fmt.Sprintf("datadog: dropped %d series of the query on both cohorts whose %s tag is none of theirs (%s)", unknown, tag, strings.Join(u.values, ", "))
		for k := range out {
			out[k].Warnings = append(out[k].Warnings, w)
		}
	}
	return out, nil
}

// tagValue is the value of tag in a series' tag_set; ok is false when the tag is
// absent or has several values.
func tagValue(tagSet []string, tag string) (string, bool) {
	value, n := "", 0
	for _, t := range tagSet {
		if k, v, ok := strings.Cut(t, ":"); ok && k == tag {
			value = v
			n++
		}
	}
	return value, n == 1
}
