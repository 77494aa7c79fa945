package analysis

import (
	"fmt"
	"strings"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// ValueChecker is implemented by a provider whose query language gives meaning to some
// characters a registration value could hold (a `,` or `}` in a Datadog scope, a space in
// a synthetic query): CheckValue says why v cannot be pasted into one of its queries.
type ValueChecker interface {
	CheckValue(v string) error
}

// checkQueryValues refuses, naming the variable, a cohort or shared value that reaches a
// query of a and that the provider's language cannot hold as a plain value. Values no
// query uses (those only actuators read) are left to the actuators.
func checkQueryValues(prov metrics.Provider, a *config.Analysis, r Registration) error {
	vc, ok := prov.(ValueChecker)
	if !ok {
		return nil
	}
	for _, set := range []struct {
		field string
		vars  map[string]string
	}{{"baseline", r.Baseline}, {"canary", r.Canary}, {"vars", r.Vars}} {
		used := usedKeys(a, r, set.field)
		for k, v := range set.vars {
			if !used[k] {
				continue
			}
			if err := vc.CheckValue(v); err != nil {
				return inputErr(set.field+"."+k, "%v: the %s provider's queries cannot hold it", err, a.Provider)
			}
		}
	}
	return nil
}

// probe marks a value in a probing render; it holds nothing a template could escape.
const probe = "canarydprobe"

// usedKeys finds which keys of one map (baseline, canary or vars) reach a query: a key is
// used when its value, replaced by a marker, shows up in a rendered query, or when its
// real value is in the query as really rendered (which catches a key a template reads only
// behind a condition on another value). Both err towards checking more.
func usedKeys(a *config.Analysis, r Registration, field string) map[string]bool {
	src := map[string]map[string]string{"baseline": r.Baseline, "canary": r.Canary, "vars": r.Vars}[field]
	used := make(map[string]bool, len(src))
	marked := make(map[string]string, len(src))
	keys := make([]string, 0, len(src))
	for k := range src {
		marked[k] = fmt.Sprintf("%s%d%s", probe, len(keys), probe)
		keys = append(keys, k)
	}
	for _, m := range a.Metrics {
		for _, tpl := range m.Templates() {
			for name, cohort := range map[string]map[string]string{"baseline": r.Baseline, "canary": r.Canary} {
				if field != "vars" && field != name {
					continue
				}
				real, _ := tpl.Render(metrics.TemplateData{Cohort: cohort, Vars: r.Vars})
				data := metrics.TemplateData{Cohort: cohort, Vars: r.Vars}
				if field == "vars" {
					data.Vars = marked
				} else {
					data.Cohort = marked
				}
				probed, err := tpl.Render(data)
				for i, k := range keys {
					if err != nil || strings.Contains(probed, fmt.Sprintf("%s%d%s", probe, i, probe)) || strings.Contains(real, src[k]) {
						used[k] = true
					}
				}
			}
		}
	}
	return used
}

// ValueEscaper is implemented by a provider whose language can quote any value (Flux's
// strings): EscapeValue is v as it is pasted into a query, so that it fills a string
// instead of changing the query. Such a provider's CheckValue need not refuse what it
// escapes.
type ValueEscaper interface {
	EscapeValue(v string) string
}

// templateData is what a query template of prov sees for one cohort: every value escaped
// for prov's language when prov escapes values.
func templateData(prov metrics.Provider, cohort, vars map[string]string) metrics.TemplateData {
	if b, ok := prov.(*batched); ok {
		prov = b.Provider // an interval's batch: the provider's own language
	}
	ve, ok := prov.(ValueEscaper)
	if !ok {
		return metrics.TemplateData{Cohort: cohort, Vars: vars}
	}
	esc := func(m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = ve.EscapeValue(v)
		}
		return out
	}
	return metrics.TemplateData{Cohort: esc(cohort), Vars: esc(vars)}
}
