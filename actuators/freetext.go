package actuators

import (
	"maps"
	"slices"
)

// MapText returns e with fix applied to every free-text field a client or a metric
// can fill (name, service, reason, analysis, the cohorts' and shared variables, the
// failing metrics' names and reasons, the recovery watch's reason and rollback errors,
// which quote provider answers and rendered queries), so that a kind can escape them for its
// receiver's markup before its templates print them. e's maps and slices are copied,
// never changed.
func (e Event) MapText(fix func(string) string) Event {
	e.Name, e.Service, e.Reason, e.Analysis = fix(e.Name), fix(e.Service), fix(e.Reason), fix(e.Analysis)
	for _, m := range []*map[string]string{&e.Vars, &e.Canary, &e.Baseline} {
		if *m == nil {
			continue
		}
		cp := maps.Clone(*m)
		for k, v := range cp {
			cp[k] = fix(v)
		}
		*m = cp
	}
	fs := slices.Clone(e.Failing)
	for i := range fs {
		fs[i].Name, fs[i].Reason = fix(fs[i].Name), fix(fs[i].Reason)
	}
	e.Failing = fs
	e.Recovery.Reason = fix(e.Recovery.Reason)
	if e.Recovery.RollbackErrors != nil {
		errs := slices.Clone(e.Recovery.RollbackErrors)
		for i := range errs {
			errs[i] = fix(errs[i])
		}
		e.Recovery.RollbackErrors = errs
	}
	return e
}
