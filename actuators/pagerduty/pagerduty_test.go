package pagerduty

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/testutil"
)

func event() actuators.Event {
	score := 12.0
	e := testutil.Event("page")
	e.Score, e.Reason = &score, "error-rate high"
	e.Link = "http://canaryd.example/api/v1/canaries/c1"
	e.Failing = []actuators.FailingMetric{{Name: "error-rate", Classification: "high", Critical: true, Reason: "up 60%"}}
	return e
}

// fakeEvents answers POST /v2/enqueue as the Events API v2 documents: 202
// {"status":"success","message":"Event processed","dedup_key":…} for a valid event; 400
// {"status":"invalid event",…,"errors":[…]} when routing_key, event_action or dedup_key
// (for resolve) or the trigger's payload summary, source, severity are missing; queued
// statuses first (429, 500).
type fakeEvents struct {
	key  string
	fail []int
	got  []Event
}

func (f *fakeEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if len(f.fail) > 0 {
		code := f.fail[0]
		f.fail = f.fail[1:]
		w.WriteHeader(code)
		return
	}
	var e Event
	var errs []string
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
		errs = append(errs, "malformed JSON")
	}
	if e.RoutingKey != f.key {
		errs = append(errs, "Invalid routing key")
	}
	switch e.EventAction {
	case "trigger":
		if e.Payload == nil || e.Payload.Summary == "" || e.Payload.Source == "" || e.Payload.Severity == "" {
			errs = append(errs, "'payload' is invalid or missing")
		}
	case "resolve", "acknowledge":
		if e.DedupKey == "" {
			errs = append(errs, "'dedup_key' is required")
		}
	default:
		errs = append(errs, "'event_action' is invalid")
	}
	if len(errs) > 0 {
		w.WriteHeader(http.StatusBadRequest)
		b, _ := json.Marshal(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
		w.Write(b)
		return
	}
	f.got = append(f.got, e)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"`+e.DedupKey+`"}`)
}

func newPD(t *testing.T, key string) (*PagerDuty, *fakeEvents) {
	t.Helper()
	fe := &fakeEvents{key: "R0UTINGKEY0123456789012345678901"}
	srv := httptest.NewServer(fe)
	t.Cleanup(srv.Close)
	t.Setenv("PD_KEY", key)
	c := DefaultConfig()
	c.URL = srv.URL + "/v2/enqueue"
	c.RoutingKeyEnv = "PD_KEY"
	a, err := New(c, actuators.Options{Name: "page"})
	if err != nil {
		t.Fatal(err)
	}
	return a.(*PagerDuty), fe
}

func TestPagerDutyTriggerAndResolve(t *testing.T) {
	p, fe := newPD(t, "R0UTINGKEY0123456789012345678901")
	res, err := p.Act(t.Context(), event())
	if err != nil || res.Status != 202 || !strings.Contains(res.Output, `"dedup_key":"c1"`) {
		t.Fatalf("trigger: %+v %v", res, err)
	}
	tr := fe.got[0]
	if tr.EventAction != "trigger" || tr.DedupKey != "c1" || tr.Payload.Severity != "critical" || tr.Payload.Source != "canaryd" ||
		tr.Payload.Summary != "Canary web v2 of web fail: error-rate high" || tr.Payload.Component != "web" ||
		tr.Payload.Timestamp != "2026-03-01T12:00:00Z" || tr.Links[0].Href != "http://canaryd.example/api/v1/canaries/c1" {
		t.Errorf("trigger event %+v payload %+v", tr, tr.Payload)
	}
	if fm, _ := tr.Payload.CustomDetails["failing_metrics"].([]any); len(fm) != 1 {
		t.Errorf("custom details %v", tr.Payload.CustomDetails)
	}
	e := event()
	e.Key, e.Action, e.DedupKey, e.ID = "c2/resolve:c1/page", actuators.ActionResolve, "c1", "c2"
	if _, err := p.Act(t.Context(), e); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if rs := fe.got[1]; rs.EventAction != "resolve" || rs.DedupKey != "c1" || rs.Payload != nil {
		t.Errorf("resolve event %+v", rs)
	}
	req, err := p.Render(event())
	if err != nil || strings.Contains(req.Body, "R0UTINGKEY") || !strings.Contains(req.Body, `"routing_key":"<secret>"`) || !strings.HasSuffix(req.Target, "(trigger c1)") {
		t.Errorf("render: %+v %v", req, err)
	}
}

func TestPagerDutyAnswers(t *testing.T) {
	p, fe := newPD(t, "wrong")
	if _, err := p.Act(t.Context(), event()); err == nil || actuators.IsRetryable(err) || !strings.Contains(actuators.ResultOf(err).Output, "Invalid routing key") {
		t.Errorf("400: want a final error with PagerDuty's reason, got %v", err)
	}
	fe.fail = []int{429, 503}
	for range 2 {
		if _, err := p.Act(t.Context(), event()); !actuators.IsRetryable(err) {
			t.Errorf("want retryable, got %v", err)
		}
	}
}

func TestPagerDutyConfig(t *testing.T) {
	c := DefaultConfig()
	c.Severity = "sev1"
	c.Summary = "{{"
	want := strings.Join([]string{`routing_key_env: required`, `severity: "sev1" is not one of [critical error warning info]`, `summary: parse template: template: summary:1: unclosed action`}, "\n")
	if got := c.Validate().Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
