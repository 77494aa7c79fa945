package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// chaosConfig: canaries on the synthetic provider that end within seconds (the "bad"
// cohort's error rate is 50 points higher, so it fails its critical metric at the first
// interval; the wide tolerance keeps healthy ones from failing by chance), each verdict
// posting to a webhook.
const chaosConfig = `
server: {min_interval: 1s}   # short intervals: a crash test, not a production config
providers:
  sim:
    type: synthetic
    seed: 3
    regressions:
      bad: {error_rate: {shift: 0.5}}   # decisive: this test is about crashes, not detection
actuators:
  hook: {type: webhook, url: %q, timeout: 2s}
actuation:
  service_var: app
  backoff: 100ms
analyses:
  chaos:
    provider: sim
    interval: 1s
    step: 200ms
    lifetime: 4s
    warmup: 1s
    on_fail: [hook]
    on_pass: [hook]
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }} app={{ .Vars.app }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
`

// receiver records every delivery of the webhook by its idempotency key.
type receiver struct {
	mu     sync.Mutex
	byKey  map[string]int
	canary map[string]map[string]bool // canary id → keys seen
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		CanaryID string `json:"canary_id"`
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &ev); err != nil || ev.CanaryID == "" {
		http.Error(w, "no canary id in "+string(b), http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	rc.mu.Lock()
	rc.byKey[key]++
	if rc.canary[ev.CanaryID] == nil {
		rc.canary[ev.CanaryID] = map[string]bool{}
	}
	rc.canary[ev.CanaryID][key] = true
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// TestKill9WithActuators is issue 8's crash test: 20 runs of canaryd, each killed with
// SIGKILL at a random moment after registering a canary, then one last run to the end.
// Afterwards every canary is there with one verdict, and every verdict's action was
// delivered under one idempotency key and recorded once as succeeded.
func TestKill9WithActuators(t *testing.T) {
	rc := &receiver{byKey: map[string]int{}, canary: map[string]map[string]bool{}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(chaosConfig, hook.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "c.db")
	rng := rand.New(rand.NewPCG(2026, 11))
	var ids []string
	const runs = 20
	for i := 0; i < runs; i++ {
		p := startServe(t, cfgPath, store)
		track := "good"
		if i%2 == 1 {
			track = "bad"
		}
		var c canaryJSON
		body := map[string]any{
			"name": fmt.Sprintf("svc-%d", i), "analysis": "chaos",
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": track},
			"vars": map[string]string{"app": fmt.Sprintf("svc-%d", i)},
		}
		if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
			t.Fatalf("run %d: register: %d", i, code)
		}
		ids = append(ids, c.ID)
		// Anywhere from at once to after the canary's end and its webhook.
		time.Sleep(time.Duration(rng.Int64N(int64(5 * time.Second))))
		p.kill()
	}

	p := startServe(t, cfgPath, store)
	type actuation struct {
		Key, Trigger, Actuator, State string
		Attempts                      int
	}
	deadline := time.Now().Add(90 * time.Second)
	for i, id := range ids {
		c := p.waitEnded(id, time.Until(deadline))
		want := map[bool]string{false: "pass", true: "fail"}[i%2 == 1]
		if c.Status != want {
			t.Errorf("canary %d (%s): %s, want %s: %s", i, id, c.Status, want, c.Reason)
		}
		verdicts := 0
		for _, a := range c.Actions {
			if a.Kind == "verdict" {
				verdicts++
			}
		}
		if verdicts != 1 {
			t.Errorf("canary %d: %d verdicts recorded: %+v", i, verdicts, c.Actions)
		}
		// Its one action ends succeeded, whatever the kills interrupted.
		for {
			var out struct{ Actuations []actuation }
			if code := p.call("GET", "/api/v1/canaries/"+id+"/actuations", nil, &out); code != http.StatusOK {
				t.Fatalf("actuations of %s: %d", id, code)
			}
			if len(out.Actuations) > 1 {
				t.Fatalf("canary %d: %d actions planned, want 1: %+v", i, len(out.Actuations), out.Actuations)
			}
			if len(out.Actuations) == 1 && out.Actuations[0].State == "succeeded" {
				break
			}
			if len(out.Actuations) == 1 && out.Actuations[0].State != "pending" && out.Actuations[0].State != "firing" {
				t.Fatalf("canary %d: action %+v", i, out.Actuations[0])
			}
			if time.Now().After(deadline) {
				t.Fatalf("canary %d: action not done: %+v", i, out.Actuations)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var list struct{ Canaries []canaryJSON }
	p.call("GET", "/api/v1/canaries", nil, &list)
	if len(list.Canaries) != runs {
		t.Errorf("%d canaries stored, want %d", len(list.Canaries), runs)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	redelivered := 0
	for i, id := range ids {
		if n := len(rc.canary[id]); n != 1 {
			t.Errorf("canary %d: the webhook saw %d idempotency keys, want 1", i, n)
		}
		for k := range rc.canary[id] {
			redelivered += rc.byKey[k] - 1
		}
	}
	// A delivery the kill interrupted after sending is sent again with the same key;
	// report how often, so the figure is in the test log.
	t.Logf("%d canaries, %d deliveries repeated under the same key after a kill", runs, redelivered)
}
