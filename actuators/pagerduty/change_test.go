package pagerduty

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/testutil"
)

const changeKey = "R0UTINGKEY0123456789012345678901"

// fakeChanges answers POST /v2/change/enqueue as PagerDuty's Change Events API documents
// it (developer.pagerduty.com, "Send a Change Event", and the Events API v2 overview's
// response codes): a JSON body with routing_key (the integration's key) and
// payload.summary required, payload.source, timestamp, custom_details and links
// optional; 202 {"status":"success","message":"Change event processed"}; 400
// {"status":"invalid event","message":"Event object is invalid","errors":[…]}; queued
// statuses first (429, 500). echo puts the body it got in its 400 answer.
type fakeChanges struct {
	mu   sync.Mutex
	fail []int
	echo bool
	got  []string
}

func (f *fakeChanges) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/v2/change/enqueue" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if len(f.fail) > 0 {
		code := f.fail[0]
		f.fail = f.fail[1:]
		w.WriteHeader(code)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var e ChangeEvent
	var errs []string
	if err := json.Unmarshal(b, &e); err != nil {
		errs = append(errs, "malformed JSON")
	}
	if e.RoutingKey != changeKey {
		errs = append(errs, "Invalid routing key")
	}
	if e.Payload.Summary == "" || len(e.Payload.Summary) > 1024 {
		errs = append(errs, "'payload.summary' is invalid or missing")
	}
	if len(errs) > 0 {
		w.WriteHeader(http.StatusBadRequest)
		out := map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs}
		if f.echo {
			out["received"] = string(b)
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	f.got = append(f.got, string(b))
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"success","message":"Change event processed"}`)
}

func newChangeFor(t *testing.T, key, yml string) (actuators.Actuator, *fakeChanges) {
	t.Helper()
	fc := &fakeChanges{}
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)
	t.Setenv("PD_CHANGE_KEY", key)
	var c Config
	if err := yaml.UnmarshalStrict([]byte("mode: change\nrouting_key_env: PD_CHANGE_KEY\nurl: "+srv.URL+"/v2/change/enqueue\n"+yml), &c); err != nil {
		t.Fatal(err)
	}
	a, err := New(c, actuators.Options{Name: "deploys"})
	if err != nil {
		t.Fatal(err)
	}
	return a, fc
}

func startEvent() actuators.Event {
	e := testutil.Event("deploys")
	e.Key, e.Trigger, e.Kind, e.Status, e.Cause, e.Reason = "c1/on_start/deploys", "on_start", "start", "running", "", "canary registered"
	e.Name, e.Service = "checkout v2.14", "checkout"
	e.Start = time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC)
	e.Vars = map[string]string{"app": "checkout", "version": "v2.14"}
	e.Link = "http://canaryd.example/api/v1/canaries/c1"
	return e
}

// The change event the on-call sees for a start, as sent: the summary, the canary's start
// as the timestamp, details without a verdict, a link to the canary; for an end, the
// verdict. Change events open nothing, so the actuator is not resolvable.
func TestChangeEvents(t *testing.T) {
	a, fc := newChangeFor(t, changeKey, "")
	if _, ok := a.(actuators.Resolvable); ok {
		t.Error("a change-event actuator is resolvable: a pass would send it a resolve")
	}
	res, err := a.Act(t.Context(), startEvent())
	if err != nil || res.Status != 202 || res.Output != `{"status":"success","message":"Change event processed"}` {
		t.Fatalf("act: %+v %v", res, err)
	}
	want := `{"routing_key":"` + changeKey + `","payload":{"summary":"Canary checkout v2.14 of checkout started","timestamp":"2026-03-01T11:59:00Z","source":"canaryd",` +
		`"custom_details":{"analysis":"golden","baseline":null,"canary":"checkout v2.14","canary_cohort":null,"canary_id":"c1","service":"checkout","start":"2026-03-01T11:59:00Z","status":"running","trigger":"on_start","vars":{"app":"checkout","version":"v2.14"}}},` +
		`"links":[{"href":"http://canaryd.example/api/v1/canaries/c1","text":"Canary checkout v2.14"}]}`
	if fc.got[0] != want {
		t.Errorf("start body\n got %s\nwant %s", fc.got[0], want)
	}
	end := startEvent()
	score := 20.0
	end.Key, end.Trigger, end.Kind, end.Status, end.Cause, end.Reason, end.Score = "c1/on_fail/deploys", "on_fail", "verdict", "fail", "critical", "error-rate high", &score
	if _, err := a.Act(t.Context(), end); err != nil {
		t.Fatal(err)
	}
	var got ChangeEvent
	if err := json.Unmarshal([]byte(fc.got[1]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Payload.Summary != "Canary checkout v2.14 of checkout fail (score 20.0)" || got.Payload.Timestamp != "2026-03-01T12:00:00Z" ||
		got.Payload.CustomDetails["reason"] != "error-rate high" || got.Payload.CustomDetails["score"] != 20.0 {
		t.Errorf("end event: %+v", got)
	}
	req, err := a.Render(startEvent())
	if err != nil || strings.Contains(req.Body, changeKey) || !strings.Contains(req.Body, `"routing_key":"<secret>"`) || !strings.HasSuffix(req.Target, "/v2/change/enqueue (change)") {
		t.Errorf("render: %+v %v", req, err)
	}
}

// Hostile values (a registration's variables, an abort's reason) stay inside the JSON
// strings they land in; the routing key never shows, even when PagerDuty's answer quotes
// the request; a 400 is final, 429 and 5xx retried.
func TestChangeEventsHostileAndAnswers(t *testing.T) {
	a, fc := newChangeFor(t, changeKey, `summary: "{{ .Name }} {{ .Vars.version }}: {{ .Reason }}"`)
	e := startEvent()
	e.Trigger, e.Status = "on_fail", "aborted"
	e.Name = `x","routing_key":"attacker","payload":{"summary":"y`
	e.Reason = strings.Repeat("\"}\\u0000<", 400)
	e.Vars["version"] = `v2"},"links":[{"href":"http://evil"}]}`
	if _, err := a.Act(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(fc.got[0]), &got); err != nil {
		t.Fatal(err)
	}
	pl := got["payload"].(map[string]any)
	links := got["links"].([]any)
	if len(got) != 3 || got["routing_key"] != changeKey || len(links) != 1 || !strings.HasPrefix(pl["summary"].(string), e.Name+" "+e.Vars["version"]+": ") ||
		len(pl["summary"].(string)) > 1024 {
		t.Errorf("sent %s", fc.got[0])
	}

	wrong, fw := newChangeFor(t, "not-the-key-but-long-enough", "")
	fw.echo = true
	_, err := wrong.Act(t.Context(), startEvent())
	if err == nil || actuators.IsRetryable(err) || !strings.Contains(actuators.ResultOf(err).Output, "Invalid routing key") ||
		strings.Contains(actuators.ResultOf(err).Output, "not-the-key-but-long-enough") || strings.Contains(err.Error(), "not-the-key") {
		t.Errorf("400: want a final error without the key, got %v / %s", err, actuators.ResultOf(err).Output)
	}
	fc.fail = []int{429, 502}
	for range 2 {
		if _, err := a.Act(t.Context(), startEvent()); !actuators.IsRetryable(err) {
			t.Errorf("want retryable, got %v", err)
		}
	}
}

func TestChangeConfig(t *testing.T) {
	cases := []struct {
		name, yml, want string
	}{
		{"alert keys refused", "mode: change\nrouting_key_env: K\nseverity: info\nclass: deploy", "severity: only for mode alert: a change event has no severity\nclass: only for mode alert: a change event has no class"},
		{"unknown mode", "mode: incident\nrouting_key_env: K", `mode: "incident" is not alert or change`},
		{"default endpoint", "mode: change\nrouting_key_env: K", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			if err := yaml.UnmarshalStrict([]byte(tc.yml), &c); err != nil {
				t.Fatal(err)
			}
			if got := c.Validate().Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if tc.want == "" && (c.Endpoint() != DefaultChangeURL || c.Summary != DefaultChangeSummary) {
				t.Errorf("defaults: %s %q", c.Endpoint(), c.Summary)
			}
		})
	}
	var alert Config
	if err := yaml.UnmarshalStrict([]byte("routing_key_env: K"), &alert); err != nil || alert.Endpoint() != DefaultURL || alert.Mode != ModeAlert {
		t.Errorf("alert defaults: %+v %v", alert, err)
	}
}
