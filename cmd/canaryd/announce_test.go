package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
// field; here it records what arrived, by path, with its idempotency key. Grafana's GET
// /api/annotations (Find Annotations: from/to overlapping the annotation, dashboardUID,
// tags all on it; a JSON array with id, time, timeEnd — a point's is its time —, text,
// tags) answers from the annotations posted, each lookup kept in finds. The POST whose
// idempotency key ends in hold is recorded (it reached Grafana) but not answered: held
// is closed, and the answer waits until the caller goes away (canaryd killed).
type saas struct {
	mu    sync.Mutex
	got   map[string][]saasHit
	finds []saasHit
	hold  string
	held  chan struct{}
}

type saasHit struct {
	key  string
	body map[string]any
	at   time.Time
}

// find answers Grafana's GET /api/annotations from the annotations posted.
func (s *saas) find(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer glsa_announce_token" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"invalid API key"}`)
		return
	}
	q := r.URL.Query()
	num := func(v any) int64 { f, _ := v.(float64); return int64(f) }
	from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
	to, _ := strconv.ParseInt(q.Get("to"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finds = append(s.finds, saasHit{key: r.Header.Get("Idempotency-Key"), at: time.Now()})
	out := []map[string]any{}
	for i, h := range s.got["/grafana/api/annotations"] {
		start, end := num(h.body["time"]), max(num(h.body["time"]), num(h.body["timeEnd"]))
		tags := []string{}
		for _, t := range h.body["tags"].([]any) {
			tags = append(tags, t.(string))
		}
		uid, _ := h.body["dashboardUID"].(string)
		if end < from || start > to || q.Has("dashboardUID") && uid != q.Get("dashboardUID") ||
			slices.ContainsFunc(q["tags"], func(t string) bool { return !slices.Contains(tags, t) }) {
			continue
		}
		out = append(out, map[string]any{"id": i + 1, "dashboardUID": uid, "panelId": 0, "time": start, "timeEnd": end,
			"text": h.body["text"], "tags": tags, "login": "sa-canaryd"})
	}
	json.NewEncoder(w).Encode(out)
}

func (s *saas) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/grafana/api/annotations" {
		s.find(w, r)
		return
	}
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
		key := r.Header.Get("Idempotency-Key")
		s.got[r.URL.Path] = append(s.got[r.URL.Path], saasHit{key: key, body: body, at: time.Now()})
		hold := s.hold != "" && strings.HasSuffix(key, s.hold)
		if hold {
			s.hold = ""
			close(s.held)
		}
		s.mu.Unlock()
		if hold {
			<-r.Context().Done()
			return
		}
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
// audit log has the start, and a kill -9 and restart sends nothing twice. The kill comes
// while Grafana holds its answer to the failure's annotation, which it has added: the
// action is left firing, and the restart's attempt finds the annotation (Grafana has no
// idempotency key) instead of posting a second one, as the audit log says. This was
// the flake of a third annotation: a kill just after Grafana got the POST and before
// canaryd recorded its answer, which the old test's timing allowed now and then.
func TestOnStartAnnouncements(t *testing.T) {
	fake := &saas{got: map[string][]saasHit{}, hold: "/on_fail/annotate", held: make(chan struct{})}
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
	select {
	case <-fake.held:
	case <-time.After(30 * time.Second):
		t.Fatalf("the failure's annotation never reached Grafana: deliveries %v", counts(fake.hits()))
	}
	// Every announcement recorded as delivered, the failure's annotation in flight.
	wantStates := map[string]string{"on_start/annotate": "succeeded", "on_start/pd-changes": "succeeded", "on_start/releases": "succeeded",
		"on_start/dd-events": "succeeded", "on_fail/annotate": "firing"}
	waitStates(t, p, c.ID, wantStates, 30*time.Second)
	if !sameCounts(fake.hits(), want) {
		t.Fatalf("deliveries %v, want %v", counts(fake.hits()), want)
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

	p.kill() // Grafana added the failure's annotation; canaryd never hears so
	p = startServe(t, cfgPath, db)
	wantStates["on_fail/annotate"] = "succeeded"
	got := waitStates(t, p, c.ID, wantStates, 30*time.Second)
	if a := got["on_fail/annotate"]; a.Attempts != 2 {
		t.Errorf("the failure's annotation after the restart: %+v, want attempt 2", a)
	}
	time.Sleep(time.Second) // give any stray firing time to show
	if !sameCounts(fake.hits(), want) {
		t.Errorf("after a restart: deliveries %v, want %v", counts(fake.hits()), want)
	}
	fake.mu.Lock()
	finds := fake.finds
	fake.mu.Unlock()
	if len(finds) != 1 || finds[0].key != c.ID+"/on_fail/annotate" {
		t.Errorf("Grafana lookups: %+v, want one, of the failure's annotation", finds)
	}
	var trail struct {
		Entries []struct {
			Kind, Key, Outcome, Error, Reason string
			Attempt                           int
		} `json:"entries"`
	}
	p.call("GET", "/api/v1/audit?canary="+c.ID+"&actuator=annotate", nil, &trail)
	var story []string
	for _, e := range slices.Backward(trail.Entries) { // oldest first
		if e.Key == c.ID+"/on_fail/annotate" {
			story = append(story, fmt.Sprintf("%s %s %d: %s%s", e.Kind, e.Outcome, e.Attempt, e.Error, e.Reason))
		}
	}
	if wantStory := []string{
		"action pending 0: intent recorded; firing",
		"recover pending 1: attempt 1 was interrupted by a restart; firing again with the same idempotency key",
		"action succeeded 2: an earlier attempt took effect (its answer was lost): attempt 2 sent nothing",
	}; !slices.Equal(story, wantStory) {
		t.Errorf("audit of the failure's annotation:\n%s\nwant\n%s", strings.Join(story, "\n"), strings.Join(wantStory, "\n"))
	}
}

// actuationJSON is the part of GET /api/v1/canaries/{id}/actuations the tests read.
type actuationJSON struct {
	Key, State string
	Attempts   int
}

// waitStates polls a canary's actuations until each, by trigger/actuator, is in the
// state want names, and returns them; it fails the test after timeout.
func waitStates(t *testing.T, p *proc, id string, want map[string]string, timeout time.Duration) map[string]actuationJSON {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var out struct{ Actuations []actuationJSON }
		if code := p.call("GET", "/api/v1/canaries/"+id+"/actuations", nil, &out); code != http.StatusOK {
			t.Fatalf("actuations of %s: %d", id, code)
		}
		got, states := map[string]actuationJSON{}, map[string]string{}
		for _, a := range out.Actuations {
			k := strings.TrimPrefix(a.Key, id+"/")
			got[k], states[k] = a, a.State
		}
		if maps.Equal(states, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("actuations of %s: %v, want %v", id, states, want)
		}
		time.Sleep(50 * time.Millisecond)
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
