package guard

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

// ServiceKey is the form a service name is compared in: trimmed, NFC, Unicode
// case-folded, so that "Checkout", "CHECKOUT" and "checkout " are one service for the
// breaker, the cooldown and resolves.
func ServiceKey(s string) string {
	s = norm.NFC.String(strings.TrimSpace(s))
	// A Caser keeps state: one per call, never shared between goroutines.
	return norm.NFC.String(cases.Fold().String(s))
}

// ServiceOf is the service a canary is of, as a ServiceKey: the variable v from vars,
// the canary cohort, then the baseline; the canary's name when none has it (canaries
// registered before registrations had to name their service).
func ServiceOf(c *analysis.Canary, v string) string {
	if s := serviceVar(c, v); s != "" {
		return s
	}
	return ServiceKey(c.Name)
}

func serviceVar(c *analysis.Canary, v string) string {
	for _, m := range []map[string]string{c.Vars, c.Canary, c.Baseline} {
		if s := ServiceKey(m[v]); s != "" {
			return s
		}
	}
	return ""
}

// serviceVarOf is the variable that names a's canaries' service.
func (s *setup) serviceVarOf(a *config.Analysis) string {
	return a.ServiceVarOr(s.cfg.Actuation.ServiceVar)
}

// statusFor is a status that fires trigger, for the placeholder event.
func statusFor(trigger string) analysis.Status {
	switch trigger {
	case TriggerStart:
		return analysis.StatusRunning
	case TriggerPass:
		return analysis.StatusPass
	case TriggerMarginal:
		return analysis.StatusMarginal
	case TriggerError:
		return analysis.StatusError
	}
	return analysis.StatusFail
}

// CheckRegistration refuses a canary whose actions could not fire: when a lists
// actuators, the canary must name its service (the service variable, in vars or a
// cohort), and every actuator of every list must render for it with a placeholder
// verdict, so that a variable only an actuator uses ({{ .Vars.ns }}) or a value an
// actuator refuses (an exec option, a host) is a 400 now, not a failed rollback later.
// It is the scheduler's analysis.RegistrationCheck.
func (g *Guard) CheckRegistration(a *config.Analysis, c *analysis.Canary) error {
	if !a.Actuators() {
		return nil
	}
	s := g.setup.Load()
	sv := s.serviceVarOf(a)
	service := serviceVar(c, sv)
	if service == "" {
		return &analysis.InputError{Field: "vars." + sv, Msg: fmt.Sprintf(
			"required: analysis %s fires actuators, and the breaker and the cooldown count per service; name the canary's service in vars.%s (the analysis' service_var)", a.Name, sv)}
	}
	score := 0.0
	var failing []actuators.FailingMetric
	if len(a.Metrics) > 0 {
		m := a.Metrics[0]
		failing = []actuators.FailingMetric{{Name: m.Name, Group: m.Group, Classification: "high", Critical: true, Reason: "registration check"}}
	}
	const id = "registration"
	now := g.now()
	for _, h := range a.Hooks() {
		trigger := h.Key
		for _, name := range listFor(a, trigger) {
			b, ok := s.acts[name]
			if !ok {
				continue // reported when it fires: the config was reloaded in between
			}
			ev := actuators.Event{
				Key: id + "/" + trigger + "/" + name, Action: actuators.ActionTrigger, DedupKey: id, Actuator: name,
				ID: id, Name: c.Name, Analysis: a.Name, Status: string(statusFor(trigger)), Verdict: string(statusFor(trigger)),
				Score: &score, Reason: "registration check", Kind: string(analysis.ActionVerdict), Trigger: trigger, Cause: string(analysis.CauseLifetime),
				Service: service, Baseline: c.Baseline, Canary: c.Canary, Vars: c.Vars, Failing: failing,
				Link: s.link + id, Time: now, Start: now, DryRun: c.DryRun,
			}
			if trigger == TriggerStart {
				// As OnStart will send it: a running canary, nothing judged yet.
				ev.Verdict, ev.Score, ev.Reason, ev.Kind, ev.Cause, ev.Failing = "", nil, "canary registered", string(ActionStart), "", nil
			}
			if trigger == TriggerNotRecovered {
				ev.Recovery = actuators.RecoveryEvent{Outcome: string(analysis.RecoveryNotRecovered), Reason: "registration check"}
			}
			if _, err := b.act.Render(ev); err != nil {
				return &analysis.InputError{Field: fieldOf(err, c), Msg: fmt.Sprintf("actuator %s (%s) cannot act on this canary: %v", name, trigger, err)}
			}
		}
	}
	return nil
}

// missingVarRe finds the variable a template needed, in text/template's error.
var missingVarRe = regexp.MustCompile(`at <\$?\.(Vars|Canary|Baseline)\.([A-Za-z0-9_]+)>`)

// fieldOf names the registration field a render error comes from: the missing variable,
// or the variable whose value the actuator refused; "vars" when none can be told.
func fieldOf(err error, c *analysis.Canary) string {
	if sm := missingVarRe.FindStringSubmatch(err.Error()); sm != nil {
		return map[string]string{"Vars": "vars", "Canary": "canary", "Baseline": "baseline"}[sm[1]] + "." + sm[2]
	}
	type kv struct{ field, value string }
	var all []kv
	for _, m := range []struct {
		field string
		vars  map[string]string
	}{{"vars", c.Vars}, {"canary", c.Canary}, {"baseline", c.Baseline}} {
		for _, k := range slices.Sorted(maps.Keys(m.vars)) {
			if v := m.vars[k]; v != "" {
				all = append(all, kv{m.field + "." + k, v})
			}
		}
	}
	var oe *actuators.OptionError
	if errors.As(err, &oe) {
		for _, x := range all {
			if strings.HasPrefix(x.value, "-") && strings.HasPrefix(oe.Value, x.value) {
				return x.field
			}
		}
		for _, x := range all {
			if strings.HasPrefix(x.value, "-") && strings.Contains(oe.Value, x.value) {
				return x.field
			}
		}
		return "vars"
	}
	for _, x := range all {
		if strings.Contains(err.Error(), strconv.Quote(x.value)) {
			return x.field
		}
	}
	return "vars"
}
