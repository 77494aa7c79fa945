package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rollbackConfig: canaries of the synthetic provider that fail within seconds, each
// failure running an exec rollback that appends its arguments to a file; the breaker
// allows one rollback per service and hour, without a cooldown, so that the breaker
// alone decides.
const rollbackConfig = `
server: {min_interval: 1s}
providers:
  sim:
    type: synthetic
    seed: 5
    regressions:
      bad: {error_rate: {shift: 0.5}}
actuators:
  undo:
    type: exec
    command: ["/bin/sh", "-c", "echo \"$*\" >> %s", "undo", "--namespace={{ .Vars.ns }}", "{{ .Vars.app }}"]
    timeout: 10s
    breaker: {max: 1, window: 1h}
    cooldown: 0s
analyses:
  rollback:
    provider: sim
    interval: 1s
    step: 200ms
    lifetime: 4s
    warmup: 1s
    on_fail: [undo]
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
`

// Issue 13, findings 4, 7 and 8 against the real daemon: a registration whose rollback
// could not run (a variable only the actuator uses, no service, a value that would be
// an option) is a 400 naming the variable, and three spellings of one service are one
// service for the breaker.
func TestRollbackRegistrationAndServiceKey(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "rollbacks.log")
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(rollbackConfig, runs)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfgPath, filepath.Join(dir, "c.db"))
	reg := func(vars map[string]string) map[string]any {
		return map[string]any{
			"name": "checkout v2", "analysis": "rollback",
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "bad"}, "vars": vars,
		}
	}
	refused := []struct {
		name  string
		vars  map[string]string
		field string
		msg   string
	}{
		{"a var only the rollback uses", map[string]string{"app": "checkout"}, "vars.ns", `map has no entry for key "ns"`},
		{"no service", map[string]string{"ns": "shop"}, "vars.app", "required: analysis rollback fires actuators"},
		{"a value that would be an option", map[string]string{"app": "--kubeconfig=/tmp/evil", "ns": "shop"}, "vars.app", `starts with "-"`},
	}
	for _, tc := range refused {
		var e struct{ Error, Field string }
		if code := p.call("POST", "/api/v1/canaries", reg(tc.vars), &e); code != http.StatusBadRequest || e.Field != tc.field || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: %d %+v, want 400 %s: …%s…", tc.name, code, e, tc.field, tc.msg)
		}
	}

	spellings := []string{"Checkout", "CHECKOUT", "checkout "}
	var ids []string
	for _, app := range spellings {
		var c canaryJSON
		if code := p.call("POST", "/api/v1/canaries", reg(map[string]string{"app": app, "ns": "shop"}), &c); code != http.StatusCreated {
			t.Fatalf("register %q: %d", app, code)
		}
		ids = append(ids, c.ID)
	}
	deadline := time.Now().Add(60 * time.Second)
	states := map[string]int{}
	for _, id := range ids {
		if c := p.waitEnded(id, time.Until(deadline)); c.Status != "fail" {
			t.Fatalf("canary %s: %s (%s)", id, c.Status, c.Reason)
		}
		for {
			var out struct {
				Actuations []struct{ State, Service, Error string }
			}
			p.call("GET", "/api/v1/canaries/"+id+"/actuations", nil, &out)
			if len(out.Actuations) == 1 && out.Actuations[0].State != "pending" && out.Actuations[0].State != "firing" {
				a := out.Actuations[0]
				states[a.State]++
				if a.Service != "checkout" {
					t.Errorf("canary %s: service %q", id, a.Service)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("canary %s: action not done: %+v", id, out.Actuations)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	b, _ := os.ReadFile(runs)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(b) == 0 {
		lines = nil
	}
	t.Logf("3 spellings of one service: %d rollbacks ran, actions %v", len(lines), states)
	if len(lines) != 1 || states["succeeded"] != 1 || states["refused"] != 2 {
		t.Errorf("rollbacks ran %d times (%q), actions %v; want 1 run, 1 succeeded, 2 refused by the breaker", len(lines), lines, states)
	}
	var list struct{ Canaries []canaryJSON }
	p.call("GET", "/api/v1/canaries", nil, &list)
	if len(list.Canaries) != len(ids) {
		t.Errorf("%d canaries stored, want %d (a refused registration stores nothing)", len(list.Canaries), len(ids))
	}
}
