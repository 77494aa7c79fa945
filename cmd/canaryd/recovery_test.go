package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recoveryConfig: a canary whose errors ×10 persist after its rollback (the synthetic
// regression is keyed by its cohort), watched for 8 s, escalating to a webhook.
const recoveryConfig = `
server: {min_interval: 1s}   # short intervals: a process test, not a production config
providers:
  sim:
    type: synthetic
    seed: 5
    regressions:
      bad: {error_rate: {shift: 0.5}}
actuators:
  rollback: {type: webhook, url: "%[1]s/rollback", timeout: 2s}
  page: {type: webhook, url: "%[1]s/page", timeout: 2s, notification: true}
actuation:
  backoff: 100ms
analyses:
  watched:
    provider: sim
    interval: 2s
    step: 200ms
    lifetime: 10s
    warmup: 2s
    on_fail: [rollback]
    on_not_recovered: [page]
    recovery: {within: 8s}
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }} app={{ .Vars.app }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
`

type recoveryHooks struct {
	mu   sync.Mutex
	keys map[string][]string // path → idempotency keys
}

func (h *recoveryHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.keys[r.URL.Path] = append(h.keys[r.URL.Path], r.Header.Get("Idempotency-Key"))
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

type recoveryJSON struct {
	Status   string `json:"status"`
	Recovery *struct {
		Outcome      string     `json:"outcome"`
		Reason       string     `json:"reason"`
		Checks       int        `json:"checks"`
		RolledBackAt *time.Time `json:"rolled_back_at"`
		Figures      []struct {
			Metric  string  `json:"metric"`
			Cohort  string  `json:"cohort"`
			Within  bool    `json:"within"`
			Current float64 `json:"current"`
		} `json:"figures"`
	} `json:"recovery"`
}

// TestRecoveryWatchSurvivesKill9: canaryd is killed (-9) in the middle of a failed
// canary's recovery watch; the next start resumes the watch from the stored check, ends
// it not_recovered, escalates once, and `canary wait --recovery` exits 6.
func TestRecoveryWatchSurvivesKill9(t *testing.T) {
	hooks := &recoveryHooks{keys: map[string][]string{}}
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(recoveryConfig, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "c.db")
	p := startServe(t, cfgPath, store)
	var c canaryJSON
	body := map[string]any{"name": "checkout v2", "analysis": "watched", "baseline": map[string]string{"track": "stable"},
		"canary": map[string]string{"track": "bad"}, "vars": map[string]string{"app": "checkout"}}
	if code := p.call("POST", "/api/v1/canaries", body, &c); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	get := func(p *proc) recoveryJSON {
		var r recoveryJSON
		if code := p.call("GET", "/api/v1/canaries/"+c.ID, nil, &r); code != http.StatusOK {
			t.Fatalf("GET: %d", code)
		}
		return r
	}
	deadline := time.Now().Add(40 * time.Second)
	for r := get(p); r.Recovery == nil || r.Recovery.Checks < 1; r = get(p) {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery check after 40 s: %+v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.kill()
	before := recoveryJSON{}
	p2 := startServe(t, cfgPath, store)
	before = get(p2)
	if before.Status != "fail" || before.Recovery.Outcome != "watching" || before.Recovery.Checks < 1 {
		t.Fatalf("after the restart: %+v", before.Recovery)
	}

	var stderr bytes.Buffer
	wait := exec.Command(binPath, "canary", "wait", c.ID, "--recovery", "--poll", "200ms", "--timeout", "60s", "--server", p2.url)
	wait.Stderr = &stderr
	err := wait.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitNotRecovered {
		t.Fatalf("canary wait --recovery: %v, want exit %d:\n%s", err, exitNotRecovered, stderr.String())
	}
	if !strings.Contains(stderr.String(), "recovery: not_recovered, still outside tolerance at the end of the watch: error-rate (canary)") {
		t.Errorf("canary wait's output lacks the outcome:\n%s", stderr.String())
	}
	after := get(p2)
	if after.Status != "fail" || after.Recovery.Outcome != "not_recovered" || after.Recovery.Checks != 4 || after.Recovery.RolledBackAt == nil {
		t.Errorf("final watch: status %s, %+v", after.Status, after.Recovery)
	}
	// The page webhook is called once, with the escalation's key, after the rollback.
	deadline = time.Now().Add(10 * time.Second)
	for {
		hooks.mu.Lock()
		rb, page := hooks.keys["/rollback"], hooks.keys["/page"]
		hooks.mu.Unlock()
		if len(page) > 0 {
			if len(rb) != 1 || rb[0] != c.ID+"/on_fail/rollback" || len(page) != 1 || page[0] != c.ID+"/on_not_recovered/page" {
				t.Errorf("deliveries: rollback %v, page %v", rb, page)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no escalation after the watch ended: rollback %v", rb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var audit struct {
		Entries []struct{ Kind, Outcome, Trigger string } `json:"entries"`
	}
	p2.call("GET", "/api/v1/audit?canary="+c.ID+"&kind=recovery", nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Outcome != "not_recovered" {
		t.Errorf("audit: %+v", audit.Entries)
	}
}
