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

// execOnceConfig: canaries that fail at their first interval and roll back with a slow
// exec command, with (marked) and without (plain) the completion marker.
const execOnceConfig = `
server: {min_interval: 1s}
providers:
  sim:
    type: synthetic
    seed: 5
    regressions:
      bad: {error_rate: {shift: 0.5}}
actuators:
  marked: {type: exec, command: [%[1]q], env: {RUNS: %[2]q, SLEEP: "2", MARK: "1"}, timeout: 30s}
  plain:  {type: exec, command: [%[1]q], env: {RUNS: %[2]q, SLEEP: "2", MARK: "0"}, timeout: 30s}
actuation:
  service_var: app
  backoff: 100ms
analyses:
  marked:
    provider: sim
    interval: 1s
    step: 200ms
    lifetime: 4s
    warmup: 1s
    on_fail: [marked]
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }} app={{ .Vars.app }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
  plain:
    provider: sim
    interval: 1s
    step: 200ms
    lifetime: 4s
    warmup: 1s
    on_fail: [plain]
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }} app={{ .Vars.app }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
`

// Issue 13, finding 13: canaryd is killed with SIGKILL while its exec rollback runs
// (the command is orphaned and finishes on its own). After the restart, a command that
// creates $CANARYD_DONE_FILE ran exactly once; one that does not is run again once the
// orphan has finished (at-least-once, never two at a time).
func TestKill9DuringExec(t *testing.T) {
	dir := t.TempDir()
	script, err := filepath.Abs("testdata/rollback-once.sh")
	if err != nil {
		t.Fatal(err)
	}
	runsFile := filepath.Join(dir, "runs")
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(execOnceConfig, script, runsFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "c.db")
	runsOf := func() map[string]int {
		b, _ := os.ReadFile(runsFile)
		out := map[string]int{}
		for _, l := range strings.Fields(string(b)) {
			out[l]++
		}
		return out
	}
	// waitDone waits for a canary's one action to succeed, and returns its output.
	waitDone := func(p *proc, i int, id string) string {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var out struct {
				Actuations []struct{ State, Output string }
			}
			if code := p.call("GET", "/api/v1/canaries/"+id+"/actuations", nil, &out); code != http.StatusOK {
				t.Fatalf("actuations of %s: %d", id, code)
			}
			if len(out.Actuations) == 1 && out.Actuations[0].State == "succeeded" {
				return out.Actuations[0].Output
			}
			if len(out.Actuations) == 1 && out.Actuations[0].State != "pending" && out.Actuations[0].State != "firing" {
				t.Fatalf("kill %d: action %+v", i, out.Actuations[0])
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: action not done: %+v", i, out.Actuations)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	kills := []string{"marked", "marked", "marked", "marked", "marked", "plain", "plain"}
	reruns := map[string]int{}
	p := startServe(t, cfgPath, store)
	for i, analysisName := range kills {
		var c canaryJSON
		body := map[string]any{
			"name": fmt.Sprintf("svc-%d", i), "analysis": analysisName,
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "bad"},
			"vars": map[string]string{"app": fmt.Sprintf("svc-%d", i)},
		}
		if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
			t.Fatalf("kill %d: register: %d", i, code)
		}
		deadline := time.Now().Add(30 * time.Second)
		for runsOf()[c.ID] == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the rollback never started", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.kill() // the command sleeps on, orphaned
		p = startServe(t, cfgPath, store)
		out := waitDone(p, i, c.ID)
		if analysisName == "marked" && (!strings.Contains(out, "not run again") || !strings.Contains(out, "rolled back "+c.ID)) {
			t.Errorf("kill %d: output %q", i, out)
		}
		reruns[analysisName] += runsOf()[c.ID] - 1
	}
	if reruns["marked"] != 0 {
		t.Errorf("with the completion marker: %d re-runs after 5 kills, want 0", reruns["marked"])
	}
	if reruns["plain"] != 2 {
		t.Errorf("without the marker: %d re-runs after 2 kills, want 2 (at-least-once)", reruns["plain"])
	}
	t.Logf("kill -9 during exec: %d re-runs of 5 with the completion marker, %d of 2 without", reruns["marked"], reruns["plain"])
}
