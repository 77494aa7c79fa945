package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// announceConfig: a canary of the synthetic provider that fails within seconds; its
// analysis announces it on_start to Grafana, PagerDuty (a change event), Slack and
// Datadog, and annotates the failure. @SAAS@ is the loopback fake's URL.
const announceConfig = `
server: {min_interval: 1s}
actuation: {external_url: "http://canaryd.test"}
providers:
  sim:
    type: synthetic
    seed: 5
    regressions:
      bad: {error_rate: {shift: 0.5}}
actuators:
  annotate: {type: grafana, url: "@SAAS@/grafana", token_env: ANNOUNCE_GRAFANA_TOKEN, dashboard_uid: "{{ .Vars.dashboard }}"}
  pd-changes: {type: pagerduty, mode: change, url: "@SAAS@/v2/change/enqueue", routing_key_env: ANNOUNCE_PD_KEY}
  releases: {type: slack, url_env: ANNOUNCE_SLACK_URL}
  dd-events: {type: datadog_event, api_url: "@SAAS@/dd", api_key_env: ANNOUNCE_DD_KEY}
analyses:
  announced:
    provider: sim
    interval: 1s
    step: 200ms
    lifetime: 4s
    warmup: 1s
    on_start: [annotate, pd-changes, releases, dd-events]
    on_fail: [annotate]
    metrics:
      - name: error-rate
        query: 'signal=error_rate cohort={{ .Cohort.track }}'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05, critical: true}
`

// saas is one loopback server shaped as the four APIs canaryd announces to: Grafana's
// POST /api/annotations (Bearer token, 200 {"message":"Annotation added","id":N}),
// PagerDuty's POST /v2/change/enqueue (routing_key in the body, 202
// {"status":"success","message":"Change event processed"}), a Slack incoming webhook
// (200 "ok") and Datadog's POST /api/v1/events (DD-API-KEY, 202 {"status":"ok",…}); a
// wrong credential gets the API's 401/400/403. The unit tests of each kind check every
// field; here it records what arrived, by path, with its idempotency key.
type saas struct {
	mu  sync.Mutex
	got map[string][]saasHit
}

type saasHit struct {
	key  string
	body map[string]any
	at   time.Time
}

func (s *saas) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	ok, code, answer := false, http.StatusOK, ""
	switch r.URL.Path {
	case "/grafana/api/annotations":
		ok, answer = r.Header.Get("Authorization") == "Bearer glsa_announce_token", `{"message":"Annotation added","id":1}`
		if !ok {
			code, answer = http.StatusUnauthorized, `{"message":"invalid API key"}`
		}
	case "/v2/change/enqueue":
		ok, code, answer = body["routing_key"] == "announce-routing-key-0123456789ab", http.StatusAccepted, `{"status":"success","message":"Change event processed"}`
		if !ok {
			code, answer = http.StatusBadRequest, `{"status":"invalid event","message":"Event object is invalid","errors":["Invalid routing key"]}`
		}
	case "/services/T0/B0/announce":
		ok, answer = true, "ok"
	case "/dd/api/v1/events":
		ok, code, answer = r.Header.Get("DD-API-KEY") == "announce-dd-key-0123456789abcdef", http.StatusAccepted, `{"status":"ok","event":{"id":1}}`
		if !ok {
			code, answer = http.StatusForbidden, `{"errors":["Forbidden"]}`
		}
	default:
		code, answer = http.StatusNotFound, `{"message":"Not found"}`
	}
	if ok {
		s.mu.Lock()
		s.got[r.URL.Path] = append(s.got[r.URL.Path], saasHit{key: r.Header.Get("Idempotency-Key"), body: body, at: time.Now()})
		s.mu.Unlock()
	}
	w.WriteHeader(code)
	io.WriteString(w, answer)
}

func (s *saas) hits() map[string][]saasHit {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]saasHit{}
	for k, v := range s.got {
		out[k] = append([]saasHit(nil), v...)
	}
	return out
}

// Issue 20 item 3 and issue 21 item 3 against the real daemon: a registration announces
// the canary once to each on_start actuator (a Grafana point at its start, a PagerDuty
// change event, a Slack message, a Datadog event), its failure annotates a region, the
// audit log has the start, and a kill -9 and restart sends nothing twice.
func TestOnStartAnnouncements(t *testing.T) {
	fake := &saas{got: map[string][]saasHit{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Setenv("ANNOUNCE_GRAFANA_TOKEN", "glsa_announce_token")
	t.Setenv("ANNOUNCE_PD_KEY", "announce-routing-key-0123456789ab")
	t.Setenv("ANNOUNCE_SLACK_URL", srv.URL+"/services/T0/B0/announce")
	t.Setenv("ANNOUNCE_DD_KEY", "announce-dd-key-0123456789abcdef")
	dir := t.TempDir()
	cfgPath, db := filepath.Join(dir, "canaryd.yml"), filepath.Join(dir, "c.db")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(announceConfig, "@SAAS@", srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfgPath, db)
	var c canaryJSON
	registered := time.Now()
	if code := p.call("POST", "/api/v1/canaries", map[string]any{
		"name": "checkout v2.14", "analysis": "announced",
		"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "bad"},
		"vars": map[string]string{"app": "checkout", "dashboard": "deploys"},
	}, &c); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	if got := p.waitEnded(c.ID, 60*time.Second); got.Status != "fail" {
		t.Fatalf("canary: %s (%s)", got.Status, got.Reason)
	}
	want := map[string]int{"/grafana/api/annotations": 2, "/v2/change/enqueue": 1, "/services/T0/B0/announce": 1, "/dd/api/v1/events": 1}
	deadline := time.Now().Add(30 * time.Second)
	for !sameCounts(fake.hits(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %v, want %v", counts(fake.hits()), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h := fake.hits()
	for path, hs := range h {
		for _, x := range hs {
			if strings.Contains(x.key, "/on_start/") {
				t.Logf("registration → %s delivered: %s", path, x.at.Sub(registered).Round(time.Millisecond))
			}
		}
	}
	start, end := h["/grafana/api/annotations"][0], h["/grafana/api/annotations"][1]
	if start.key == end.key {
		start, end = end, start
	}
	if start.key != c.ID+"/on_start/annotate" || start.body["timeEnd"] != nil || start.body["dashboardUID"] != "deploys" ||
		start.body["text"] != "Canary checkout v2.14 of checkout started" {
		t.Errorf("start annotation: %+v", start)
	}
	if end.key != c.ID+"/on_fail/annotate" || end.body["timeEnd"] == nil || end.body["time"] != start.body["time"] {
		t.Errorf("failure annotation (a region from the start): %+v", end)
	}
	if pl, _ := h["/v2/change/enqueue"][0].body["payload"].(map[string]any); pl["summary"] != "Canary checkout v2.14 of checkout started" {
		t.Errorf("change event: %+v", h["/v2/change/enqueue"][0].body)
	}
	if txt, _ := h["/services/T0/B0/announce"][0].body["text"].(string); !strings.HasPrefix(txt, ":rocket: Canary *checkout v2.14* of checkout started") {
		t.Errorf("slack: %q", txt)
	}
	if dd := h["/dd/api/v1/events"][0].body; dd["title"] != "Canary checkout v2.14 of checkout started" || dd["alert_type"] != "info" {
		t.Errorf("datadog: %+v", dd)
	}
	var audit struct {
		Entries []struct{ Kind, Outcome, Trigger, Who string } `json:"entries"`
	}
	p.call("GET", "/api/v1/audit?canary="+c.ID+"&kind=start", nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Outcome != "running" || audit.Entries[0].Trigger != "on_start" {
		t.Errorf("audit start entries: %+v", audit.Entries)
	}

	p.kill()
	startServe(t, cfgPath, db)  // the restarted daemon; its cleanup stops it
	time.Sleep(2 * time.Second) // Recover has run before ready; give any stray firing time to show
	if got := counts(fake.hits()); !sameCounts(fake.hits(), want) {
		t.Errorf("after a restart: deliveries %v, want %v", got, want)
	}
}

func counts(h map[string][]saasHit) map[string]int {
	out := map[string]int{}
	for k, v := range h {
		out[k] = len(v)
	}
	return out
}

func sameCounts(h map[string][]saasHit, want map[string]int) bool {
	return fmt.Sprint(counts(h)) == fmt.Sprint(want)
}
