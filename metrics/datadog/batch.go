package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"go.uber.org/zap"

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
// with no series is no data. With queries_per_request above 1 (V2), the queries over the
// same window share requests, that many in each, their series split back by
// query_index. Any other query is sent as Query sends it.
func (p *Provider) QueryBatch(ctx context.Context, qs []metrics.Query) []metrics.Result {
	out := make([]metrics.Result, len(qs))
	var wg sync.WaitGroup
	for _, pack := range p.packs(p.plan(qs, out)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if len(pack) == 1 {
				p.run(ctx, pack[0], out)
				return
			}
			p.runPack(ctx, pack, out)
		}()
	}
	wg.Wait()
	return out
}

// packs groups units into requests: each alone, or, with queries_per_request, the
// plain (not JSON) units over one window up to that many a request, in order.
func (p *Provider) packs(units []unit) [][]unit {
	var out [][]unit
	if p.cfg.QueryAPI != "v2" || p.cfg.QueriesPerRequest < 2 {
		for _, u := range units {
			out = append(out, []unit{u})
		}
		return out
	}
	open := map[string]int{} // a window: its pack with room left
	for _, u := range units {
		if v2query.IsJSON(u.q.Text) {
			out = append(out, []unit{u}) // its names and formulas are its own
			continue
		}
		w := fmt.Sprintf("%d\x00%d\x00%d", u.q.Start.UnixNano(), u.q.End.UnixNano(), u.q.Step)
		if j, ok := open[w]; ok && len(out[j]) < p.cfg.QueriesPerRequest {
			out[j] = append(out[j], u)
			continue
		}
		open[w] = len(out)
		out = append(out, []unit{u})
	}
	return out
}

// runPack sends several units as one V2 request, the query of unit k named qk with
// the formula qk (so query_index is k), and gives each unit its series. A request
// Datadog refuses as bad (HTTP 400) is sent again unit by unit, so that one bad query
// fails its own metric only; any other failure is every unit's.
func (p *Provider) runPack(ctx context.Context, pack []unit, out []metrics.Result) {
	var spec v2query.Spec
	texts := make([]string, len(pack))
	for k, u := range pack {
		name := "q" + strconv.Itoa(k)
		q, err := json.Marshal(map[string]string{"data_source": "metrics", "name": name, "query": strings.TrimSpace(u.q.Text)})
		if err != nil {
			p.fail(pack, out, fmt.Errorf("datadog: %w", err))
			return
		}
		f, _ := json.Marshal(map[string]string{"formula": name})
		spec.Queries, spec.Formulas = append(spec.Queries, q), append(spec.Formulas, f)
		texts[k] = name + ": " + strings.TrimSpace(u.q.Text)
	}
	s, err := p.runV2(ctx, spec, pack[0].q, strings.Join(texts, "; "))
	if err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ctx.Err() != nil {
			p.fail(pack, out, err)
			return
		}
		p.logger.Info("datadog refused a request of several queries; sending them one by one", zap.Int("queries", len(pack)), zap.Error(err))
		var wg sync.WaitGroup
		for _, u := range pack {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.run(ctx, u, out)
			}()
		}
		wg.Wait()
		return
	}
	parts := make([]metrics.Series, len(pack))
	for k := range parts {
		parts[k].Warnings = slices.Clone(s.Warnings)
	}
	stray := 0
	for _, st := range s.Streams {
		k, err := strconv.Atoi(st.Labels[v2query.LabelQueryIndex])
		if err != nil || k < 0 || k >= len(pack) {
			stray++
			continue
		}
		st.Labels[v2query.LabelQueryIndex] = "0" // as if it had been sent alone
		parts[k].Streams = append(parts[k].Streams, st)
	}
	for k, u := range pack {
		if stray > 0 {
			parts[k].Warnings = append(parts[k].Warnings, fmt.Sprintf("datadog: dropped %d series of a request of several queries without a query_index of theirs", stray))
		}
		p.deliver(u, parts[k], out)
	}
}

// fail gives every query of pack the error.
func (p *Provider) fail(pack []unit, out []metrics.Result, err error) {
	for _, u := range pack {
		for _, i := range u.members {
			out[i] = metrics.Result{Err: err}
		}
	}
}

// deliver puts a unit's series in out: the query's, or each cohort's part of them.
func (p *Provider) deliver(u unit, s metrics.Series, out []metrics.Result) {
	if u.values == nil {
		out[u.members[0]] = metrics.Result{Series: s}
		return
	}
	for k, part := range p.splitCohorts(s, u) {
		out[u.members[k]] = metrics.Result{Series: part}
	}
}

// splitCohorts splits a merged unit's V2 series by the cohort tag in their labels (the
// answer's group_tags).
func (p *Provider) splitCohorts(s metrics.Series, u unit) []metrics.Series {
	tag := p.cfg.CohortTag
	out := make([]metrics.Series, len(u.values))
	unknown := 0
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
	p.warnUnknown(out, u, unknown)
	return out
}

func (p *Provider) warnUnknown(out []metrics.Series, u unit, unknown int) {
	if unknown == 0 {
		return
	}
	w := fmt.Sprintf("datadog: dropped %d series of the query on both cohorts whose %s tag is none of theirs (%s)", unknown, p.cfg.CohortTag, strings.Join(u.values, ", "))
	for k := range out {
		out[k].Warnings = append(out[k].Warnings, w)
	}
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

// fetchSplit runs a merged unit alone and splits its answer per member.
func (p *Provider) fetchSplit(ctx context.Context, u unit) ([]metrics.Series, error) {
	if p.v2(u.q) {
		s, err := p.queryV2(ctx, u.q)
		if err != nil {
			return nil, err
		}
		return p.splitCohorts(s, u), nil
	}
	a, err := p.queryV1(ctx, u.q)
	if err != nil {
		return nil, err
	}
	// The answer's own shape and errors first, as for a query alone.
	if _, err := toSeries(&a.resp); err != nil {
		return nil, fmt.Errorf("datadog: query %q: %w", a.text, err)
	}
	groups := map[string][]datadogV1.MetricsQueryMetadata{}
	unknown := 0
	for _, s := range a.resp.Series {
		v, ok := tagValue(s.TagSet, p.cfg.CohortTag)
		if !ok || !slices.Contains(u.values, v) {
			unknown++
			continue
		}
		groups[v] = append(groups[v], s)
	}
	out := make([]metrics.Series, len(u.values))
	for k, v := range u.values {
		part := a.resp
		part.Series = append([]datadogV1.MetricsQueryMetadata{}, groups[v]...)
		if out[k], err = a.series(&part); err != nil {
			return nil, err
		}
	}
	p.warnUnknown(out, u, unknown)
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
