package config

import (
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// parseSequential checks and fills what the sequential judges (counts, histogram) add to
// a metric: the counts judge's requests_query and the horizon, the judged part of
// the lifetime in steps (the steps over which the judge spreads its change points).
func parseSequential(m *Metric, requestsQuery string, a *Analysis, path string, errs *Errors) {
	seq := m.Spec.Kind.Sequential()
	switch {
	case m.Spec.Kind == judge.KindCounts && requestsQuery == "":
		errs.Add(join(path, "requests_query"), "required for a counts judge (query is the errors per step, requests_query the requests per step)")
	case m.Spec.Kind == judge.KindCounts:
		t, err := metrics.ParseQuery(m.Name, requestsQuery)
		if err != nil {
			errs.Add(join(path, "requests_query"), "%v", err)
			break
		}
		m.RequestsQuery, m.RequestsTemplate = requestsQuery, t
	case requestsQuery != "":
		errs.Add(join(path, "requests_query"), "only for a counts judge")
	}
	if seq && a.Step > 0 && a.Lifetime > a.Warmup {
		m.Spec.Horizon = min(max(int((a.Lifetime-a.Warmup)/a.Step), 1), judge.MaxHorizon)
	}
}

// Templates are the metric's parsed queries: Template, and RequestsTemplate for a counts
// judge. Registration renders each of them for both cohorts.
func (m *Metric) Templates() []*metrics.QueryTemplate {
	if m.RequestsTemplate != nil {
		return []*metrics.QueryTemplate{m.Template, m.RequestsTemplate}
	}
	return []*metrics.QueryTemplate{m.Template}
}
