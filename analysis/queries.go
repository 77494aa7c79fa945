package analysis

import (
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// RenderedQuery is one query of a metric as sent to the provider for each cohort: what
// a user pastes into the provider's own UI to debug a nodata.
type RenderedQuery struct {
	Metric string `json:"metric"`
	// Role is "query", or "requests_query" for a counts judge's second query.
	Role     string `json:"role"`
	Baseline string `json:"baseline"`
	Canary   string `json:"canary"`
	// Error is set instead when a template no longer renders (it did at registration).
	Error string `json:"error,omitempty"`
}

// RenderQueries renders every query of a for both cohorts of c, in the analysis' order,
// with the values as they are (Scheduler.RenderQueries escapes them as sent).
func RenderQueries(a *config.Analysis, c *Canary) []RenderedQuery { return renderQueries(nil, a, c) }

// RenderQueries renders every query of a for both cohorts of c as the scheduler sends
// them to the analysis' provider: with the values escaped for its language (Flux).
func (s *Scheduler) RenderQueries(a *config.Analysis, c *Canary) []RenderedQuery {
	var prov metrics.Provider
	if env := s.env.Load(); env != nil && a != nil {
		prov = env.Providers[a.Provider]
	}
	return renderQueries(prov, a, c)
}

func renderQueries(prov metrics.Provider, a *config.Analysis, c *Canary) []RenderedQuery {
	if a == nil || c == nil {
		return nil
	}
	var out []RenderedQuery
	for _, m := range a.Metrics {
		for i, tpl := range m.Templates() {
			q := RenderedQuery{Metric: m.Name, Role: "query"}
			if i == 1 {
				q.Role = "requests_query"
			}
			var err error
			if q.Baseline, err = tpl.Render(templateData(prov, c.Baseline, c.Vars)); err == nil {
				q.Canary, err = tpl.Render(templateData(prov, c.Canary, c.Vars))
			}
			if err != nil {
				q.Error = err.Error()
			}
			out = append(out, q)
		}
	}
	return out
}
