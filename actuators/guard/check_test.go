package guard

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

func TestServiceKey(t *testing.T) {
	for in, want := range map[string]string{
		"checkout":       "checkout",
		"Checkout":       "checkout",
		"CHECKOUT":       "checkout",
		"checkout ":      "checkout",
		"\tCheckout\n":   "checkout",
		"Straße":         "strasse",   // full case folding, not ToLower
		"CAFE\u0301":     "caf\u00e9", // decomposed É folds and composes to é
		"caf\u00e9":      "caf\u00e9",
		"ΣΊΣΥΦΟΣ":        "σίσυφοσ",
		"   ":            "",
		"api-gateway-eu": "api-gateway-eu",
	} {
		if got := ServiceKey(in); got != want {
			t.Errorf("ServiceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// "Checkout", "CHECKOUT" and "checkout " are one service: one breaker, one rollback.
func TestSpellingsShareOneBreaker(t *testing.T) {
	e := newEnv(t, envOpts{extra: "  breaker: {max: 1, window: 1h}"})
	var ids []string
	for _, app := range []string{"Checkout", "CHECKOUT", "checkout "} {
		ids = append(ids, e.verdict(canaryOpts{app: app, status: analysis.StatusFail}).ID)
		e.clock.Advance(time.Minute)
	}
	if n := len(e.rc.deliveries("/rollback/")); n != 1 {
		t.Fatalf("rollbacks fired for 3 spellings of one service: %d, want 1", n)
	}
	for i, id := range ids {
		a := e.actuations(id)["rollback"]
		if a.Service != "checkout" {
			t.Errorf("canary %d: service %q", i, a.Service)
		}
		if i > 0 && (a.State != StateRefused || !strings.Contains(a.Error, `on service "checkout"`)) {
			t.Errorf("canary %d: %s %s", i, a.State, a.Error)
		}
	}
	if es := e.audit(Query{Service: "CheckOut", Kind: "action", Outcome: "refused"}); len(es) != 2 {
		t.Errorf("audit by service in another case: %d refused entries, want 2", len(es))
	}
}

// A registration is refused when an action it could fire would not render for it.
func TestCheckRegistration(t *testing.T) {
	e := newEnv(t, envOpts{
		actuators: `  undo: {type: exec, command: ["kubectl", "--namespace={{ .Vars.ns }}", "rollout", "undo", "{{ .Canary.kind }}/{{ .Vars.app }}"]}
  argo: {type: exec, command: ["kubectl", "argo", "rollouts", "abort", "{{ .Vars.app }}"]}
  flags: {type: webhook, url: "http://{{ .Vars.region }}.flags.internal/off"}`,
	})
	a := *e.cfg.Analyses["golden"]
	a.OnFail = []string{"rollback", "undo", "notify"}
	a.OnPass = []string{"notify"}
	noActs := a
	noActs.OnFail, noActs.OnPass, noActs.OnError = nil, nil, nil
	svc := a
	svc.ServiceVar = "service"
	argo := a
	argo.OnFail = []string{"argo"}
	flags := a
	flags.OnError = []string{"flags"}
	notifyOnly := a
	notifyOnly.OnFail, notifyOnly.OnPass = []string{"notify"}, nil
	startOnly := noActs
	startOnly.OnStart = []string{"flags"}
	good := func() *analysis.Canary {
		return &analysis.Canary{Name: "checkout v2", Vars: map[string]string{"app": "checkout", "ns": "shop", "region": "eu"},
			Baseline: map[string]string{"track": "stable", "kind": "deployment"}, Canary: map[string]string{"track": "canary", "kind": "deployment"}}
	}
	cases := []struct {
		name  string
		a     *analysis.Canary
		an    *config.Analysis
		field string
		msg   string
	}{
		{name: "all there", a: good()},
		{name: "var only an actuator uses", a: func() *analysis.Canary { c := good(); delete(c.Vars, "ns"); return c }(),
			field: "vars.ns", msg: `actuator undo (on_fail) cannot act on this canary`},
		{name: "cohort var only an actuator uses", a: func() *analysis.Canary { c := good(); delete(c.Canary, "kind"); return c }(),
			field: "canary.kind", msg: `map has no entry for key "kind"`},
		{name: "no service", a: func() *analysis.Canary { c := good(); delete(c.Vars, "app"); return c }(),
			field: "vars.app", msg: "required: analysis golden fires actuators"},
		{name: "blank service", a: func() *analysis.Canary { c := good(); c.Vars["app"] = "  "; return c }(),
			field: "vars.app", msg: "required"},
		{name: "service from the canary cohort", a: func() *analysis.Canary {
			c := good()
			delete(c.Vars, "app")
			c.Canary["app"] = "checkout"
			return c
		}(), an: &notifyOnly},
		{name: "the analysis' own service_var", a: good(), an: &svc, field: "vars.service", msg: "required"},
		{name: "no actuators, no service needed", a: func() *analysis.Canary { c := good(); c.Vars = map[string]string{}; return c }(), an: &noActs},
		{name: "a value that would be an option", a: func() *analysis.Canary { c := good(); c.Vars["app"] = "--kubeconfig=/tmp/evil"; return c }(), an: &argo,
			field: "vars.app", msg: `rendered "--kubeconfig=/tmp/evil" starts with "-"`},
		{name: "a value refused in a host", a: func() *analysis.Canary { c := good(); c.Vars["region"] = "evil.com/x"; return c }(), an: &flags,
			field: "vars.region", msg: `actuator flags (on_error)`},
		{name: "an on_start actuator's variable", a: func() *analysis.Canary { c := good(); delete(c.Vars, "region"); return c }(), an: &startOnly,
			field: "vars.region", msg: `actuator flags (on_start) cannot act on this canary`},
		{name: "an on_start list needs the service too", a: func() *analysis.Canary { c := good(); delete(c.Vars, "app"); return c }(), an: &startOnly,
			field: "vars.app", msg: "required: analysis golden fires actuators"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			an := &a
			if tc.an != nil {
				an = tc.an
			}
			err := e.g.CheckRegistration(an, tc.a)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ie *analysis.InputError
			if !errors.As(err, &ie) || ie.Field != tc.field || !strings.Contains(ie.Msg, tc.msg) {
				t.Fatalf("got %v, want %s: …%s…", err, tc.field, tc.msg)
			}
		})
	}
}
