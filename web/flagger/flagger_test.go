package flagger_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/web/auth"
	"github.com/canaryd/canaryd/web/flagger"
)

// fake is the scheduler and the audit log as the webhooks see them: canaries by key.
type fake struct {
	byKey  map[string]*analysis.Canary
	regs   []analysis.Registration
	regErr error
	ended  []string
	events []guard.Event
}

func newFake() *fake { return &fake{byKey: map[string]*analysis.Canary{}} }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// add stores a canary of the rollout test/podinfo at checksum sum in status s.
func (f *fake) add(sum string, s analysis.Status, reason string) *analysis.Canary {
	key := "flagger/test/podinfo/" + sum
	c := &analysis.Canary{ID: "c" + sum, Name: "test/podinfo", Analysis: "golden", Key: key, Status: s, Reason: reason,
		Start: t0, Lifetime: 10 * time.Minute, Interval: time.Minute, Intervals: 10, NextIndex: 3}
	f.byKey[key] = c
	return c
}

func (f *fake) RegisterByKey(_ context.Context, r analysis.Registration) (*analysis.Canary, analysis.Outcome, error) {
	f.regs = append(f.regs, r)
	if f.regErr != nil {
		return nil, 0, f.regErr
	}
	if c, ok := f.byKey[r.Key]; ok {
		return c, analysis.Existing, nil
	}
	c := &analysis.Canary{ID: "new", Name: r.Name, Key: r.Key, Status: analysis.StatusRunning, Start: t0,
		Lifetime: 10 * time.Minute, Interval: time.Minute, Intervals: 10, NextIndex: 1}
	f.byKey[r.Key] = c
	return c, analysis.Created, nil
}

func (f *fake) ListPage(_ context.Context, q analysis.ListQuery) (analysis.Page, error) {
	if c, ok := f.byKey[q.Key]; ok && q.Key != "" {
		return analysis.Page{Canaries: []*analysis.Canary{c}}, nil
	}
	return analysis.Page{}, nil
}

func (f *fake) end(id string, s analysis.Status, how string) (*analysis.Canary, error) {
	for _, c := range f.byKey {
		if c.ID == id {
			if c.Status.Final() {
				return nil, analysis.ErrFinished
			}
			c.Status = s
			f.ended = append(f.ended, how)
			return c, nil
		}
	}
	return nil, analysis.ErrNotFound
}

func (f *fake) Abort(_ context.Context, id, reason string, actuate bool) (*analysis.Canary, error) {
	how := "abort: " + reason
	if !actuate {
		how += " (no actuators)"
	}
	return f.end(id, analysis.StatusAborted, how)
}

func (f *fake) Promote(_ context.Context, id, reason string) (*analysis.Canary, error) {
	return f.end(id, analysis.StatusPass, "promote: "+reason)
}

func (f *fake) RecordEvent(_ context.Context, e guard.Event) error {
	f.events = append(f.events, e)
	return nil
}

func serve(f *fake) http.Handler {
	mux := http.NewServeMux()
	flagger.New(flagger.Options{Canaries: f, Events: f}).Register(auth.NewRouter(mux, nil, "api"))
	return mux
}

// call posts a Flagger payload to a webhook and returns the status and the decoded answer.
func call(t *testing.T, h http.Handler, typ, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "/api/v1/flagger/"+typ, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var a map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("%s: answer %q is not JSON: %v", typ, rec.Body.String(), err)
	}
	if strings.Count(strings.TrimSpace(rec.Body.String()), "\n") > 0 {
		t.Errorf("%s: the answer is more than one line (Flagger shows it as it is): %q", typ, rec.Body.String())
	}
	return rec.Code, a
}

func body(sum string, md map[string]string) string {
	b, _ := json.Marshal(map[string]any{"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": sum, "metadata": md})
	return string(b)
}

// Each question is answered from the canary's status: 2xx is yes, 409 a definite no
// (Flagger retries a 5xx), 404 a rollout no pre-rollout registered.
func TestAnswersFollowTheStatus(t *testing.T) {
	statuses := []analysis.Status{analysis.StatusRunning, analysis.StatusPass, analysis.StatusMarginal, analysis.StatusFail, analysis.StatusAborted, analysis.StatusError}
	want := map[string][]int{ // by status, in the order above
		flagger.Rollout:          {200, 200, 409, 409, 409, 409},
		flagger.ConfirmPromotion: {409, 200, 409, 409, 409, 409},
		flagger.Rollback:         {409, 409, 409, 200, 200, 200},
		flagger.ConfirmRollout:   {200, 200, 200, 200, 200, 200},
	}
	for typ, codes := range want {
		for i, s := range statuses {
			t.Run(typ+"/"+string(s), func(t *testing.T) {
				f := newFake()
				c := f.add("abc123", s, "critical metric failed in interval 2: error-rate: canary 10% vs 1% baseline")
				code, a := call(t, serve(f), typ, body("abc123", nil))
				if code != codes[i] {
					t.Fatalf("%d %v, want %d", code, a, codes[i])
				}
				if typ == flagger.ConfirmRollout {
					return
				}
				if a["canary"] != c.ID || a["status"] != string(s) {
					t.Errorf("answer %v does not name the canary and its status", a)
				}
				if s == analysis.StatusFail && code == 409 && !strings.Contains(a["error"].(string), "critical metric failed in interval 2") {
					t.Errorf("a failed canary's no gives no reason: %v", a)
				}
				if s == analysis.StatusRunning && code == 409 && !strings.Contains(a["error"].(string), "is running (interval 3 of 10 next, at 2026-03-01T12:03:00Z)") {
					t.Errorf("a running canary's no says not where it is: %v", a)
				}
			})
		}
	}
	for _, typ := range []string{flagger.Rollout, flagger.ConfirmPromotion, flagger.Rollback, flagger.PostRollout} {
		t.Run(typ+"/unregistered", func(t *testing.T) {
			f := newFake()
			f.add("abc123", analysis.StatusFail, "")
			b := strings.Replace(body("other9", nil), "Progressing", "Failed", 1)
			code, a := call(t, serve(f), typ, b)
			if code != 404 || !strings.Contains(a["error"].(string), "no canary registered for test/podinfo at checksum other9: canaryd's pre-rollout webhook registers it") {
				t.Errorf("%d %v", code, a)
			}
		})
	}
}

// pre-rollout registers the canary Flagger runs: keyed by namespace, name and checksum,
// its primary as the baseline, the rest from the metadata; a repeat is the same canary.
func TestPreRollout(t *testing.T) {
	cases := []struct {
		name     string
		md       map[string]string
		baseline map[string]string
		canary   map[string]string
		vars     map[string]string
		lifetime time.Duration
		dryRun   bool
	}{
		{"defaults", map[string]string{"analysis": "golden", "token": "secret-token-0123456789abcdef"},
			map[string]string{"workload": "podinfo-primary"}, map[string]string{"workload": "podinfo"},
			map[string]string{"namespace": "test", "target": "podinfo"}, 0, false},
		{"another target", map[string]string{"analysis": "golden", "target": "web"},
			map[string]string{"workload": "web-primary"}, map[string]string{"workload": "web"},
			map[string]string{"namespace": "test", "target": "web"}, 0, false},
		{"overrides and extras", map[string]string{"analysis": "golden", "baseline.workload": "podinfo-stable", "canary.track": "canary",
			"vars.app": "podinfo", "lifetime": "20m", "dry_run": "true", "eventMessage": "ignored"},
			map[string]string{"workload": "podinfo-stable"}, map[string]string{"workload": "podinfo", "track": "canary"},
			map[string]string{"namespace": "test", "target": "podinfo", "app": "podinfo"}, 20 * time.Minute, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			h := serve(f)
			code, a := call(t, h, flagger.PreRollout, body("abc123", tc.md))
			if code != 201 || a["key"] != "flagger/test/podinfo/abc123" || !strings.HasPrefix(a["message"].(string), "registered: canary new is running") {
				t.Fatalf("%d %v", code, a)
			}
			r := f.regs[0]
			if r.Key != "flagger/test/podinfo/abc123" || r.Name != "test/podinfo" || r.Analysis != "golden" ||
				!maps.Equal(r.Baseline, tc.baseline) || !maps.Equal(r.Canary, tc.canary) || !maps.Equal(r.Vars, tc.vars) ||
				r.Lifetime != tc.lifetime || r.DryRun != tc.dryRun || !r.Start.IsZero() {
				t.Errorf("registration %+v", r)
			}
			code, a = call(t, h, flagger.PreRollout, body("abc123", tc.md))
			if code != 200 || a["canary"] != "new" || !strings.HasPrefix(a["message"].(string), "already registered") {
				t.Errorf("repeat: %d %v", code, a)
			}
			if len(f.regs) != 2 || !maps.Equal(f.regs[0].Vars, f.regs[1].Vars) {
				t.Errorf("a repeat must ask for the same registration: %+v", f.regs)
			}
		})
	}
}

// Bad input is a 4xx naming the field, as Flagger shows it; unknown fields are ignored.
func TestBadInput(t *testing.T) {
	ok := map[string]string{"analysis": "golden"}
	cases := []struct {
		name, typ, body string
		regErr          error
		code            int
		field, error    string
	}{
		{"unknown fields are ignored", flagger.PreRollout, `{"name":"podinfo","namespace":"test","checksum":"abc","metadata":{"analysis":"golden"},"labels":{"a":"b"},"phase":"Progressing","extra":1}`,
			nil, 201, "", ""},
		{"no analysis", flagger.PreRollout, body("abc", map[string]string{"target": "x"}), nil, 400, "metadata.analysis", "metadata.analysis: required"},
		{"unknown analysis", flagger.PreRollout, body("abc", ok), &analysis.InputError{Field: "analysis", Msg: `unknown analysis "golden"`}, 400, "metadata.analysis", `metadata.analysis: unknown analysis "golden"`},
		{"a bad variable", flagger.PreRollout, body("abc", ok), &analysis.InputError{Field: "vars.app", Msg: "required by the query"}, 400, "metadata.vars.app", "metadata.vars.app: required"},
		{"a changed request", flagger.PreRollout, body("abc", ok), &analysis.KeyConflictError{Key: "flagger/test/podinfo/abc", ID: "c1", Field: "vars.app"}, 409, "metadata.vars.app", "registered with a different vars.app"},
		{"the store cannot write", flagger.PreRollout, body("abc", ok), errors.New("disk on fire"), 500, "", "internal error"},
		{"a bad duration", flagger.PreRollout, body("abc", map[string]string{"analysis": "golden", "lifetime": "forever"}), nil, 400, "metadata.lifetime", `"forever" is not a duration`},
		{"a bad dry run", flagger.PreRollout, body("abc", map[string]string{"analysis": "golden", "dry_run": "maybe"}), nil, 400, "metadata.dry_run", `"maybe" is not true or false`},
		{"a bad target", flagger.PreRollout, body("abc", map[string]string{"analysis": "golden", "target": "Web App"}), nil, 400, "metadata.target", "Kubernetes object name"},
		{"no name", flagger.Rollout, `{"namespace":"test","checksum":"abc"}`, nil, 400, "name", "name: required"},
		{"a bad name", flagger.Rollout, `{"name":"pod/info","namespace":"test","checksum":"abc"}`, nil, 400, "name", "Kubernetes object name"},
		{"no namespace", flagger.Rollout, `{"name":"podinfo","checksum":"abc"}`, nil, 400, "namespace", "namespace: required"},
		{"no checksum", flagger.Rollback, `{"name":"podinfo","namespace":"test"}`, nil, 400, "checksum", "checksum: required"},
		{"a bad checksum", flagger.Rollback, `{"name":"podinfo","namespace":"test","checksum":"a\"b"}`, nil, 400, "checksum", "letters and digits"},
		{"a name too long for a key", flagger.Rollout, `{"name":"` + strings.Repeat("a", 250) + `","namespace":"test","checksum":"abc"}`, nil, 400, "name", "must fit in 256 bytes"},
		{"metadata not strings", flagger.PreRollout, `{"name":"podinfo","namespace":"test","checksum":"abc","metadata":{"analysis":1}}`, nil, 400, "metadata.analysis", "must be a string, not a JSON number"},
		{"not JSON", flagger.Rollout, `name=podinfo`, nil, 400, "", "the body must be Flagger's webhook payload"},
		{"post-rollout's phase", flagger.PostRollout, body("abc", nil), nil, 400, "phase", `"Progressing" is not how a rollout ends`},
		{"confirm-rollout needs no checksum", flagger.ConfirmRollout, `{"name":"podinfo","namespace":"test","phase":"Initialized"}`, nil, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.regErr = tc.regErr
			code, a := call(t, serve(f), tc.typ, tc.body)
			if code != tc.code || (a["field"] != nil && a["field"] != tc.field) || (tc.field != "" && a["field"] != tc.field) {
				t.Fatalf("%d %v, want %d field %q", code, a, tc.code, tc.field)
			}
			if tc.error != "" && !strings.Contains(a["error"].(string), tc.error) {
				t.Errorf("error %q, want it to hold %q", a["error"], tc.error)
			}
		})
	}
}

// post-rollout ends a canary still running as Flagger ended the rollout (a rollback
// without canaryd's actuators, which would roll back twice); an ended canary keeps its
// verdict and the audit log records Flagger's outcome beside it.
func TestPostRollout(t *testing.T) {
	cases := []struct {
		name, phase string
		status      analysis.Status
		ended       string
		after       analysis.Status
		event       string
	}{
		{"promoted while running", "Succeeded", analysis.StatusRunning,
			"promote: Flagger promoted the rollout (post-rollout, phase Succeeded) before canaryd's verdict", analysis.StatusPass, ""},
		{"rolled back while running", "Failed", analysis.StatusRunning,
			"abort: Flagger rolled the rollout back (post-rollout, phase Failed) (no actuators)", analysis.StatusAborted, ""},
		{"promoted after a pass", "Succeeded", analysis.StatusPass, "", analysis.StatusPass,
			"Flagger ended the rollout Succeeded (post-rollout); canaryd's verdict: pass"},
		{"rolled back after a fail", "Failed", analysis.StatusFail, "", analysis.StatusFail,
			"Flagger ended the rollout Failed (post-rollout); canaryd's verdict: fail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			c := f.add("abc123", tc.status, "")
			code, a := call(t, serve(f), flagger.PostRollout, strings.Replace(body("abc123", nil), "Progressing", tc.phase, 1))
			if code != 200 || a["status"] != string(tc.after) || c.Status != tc.after {
				t.Fatalf("%d %v", code, a)
			}
			if tc.ended != "" && (len(f.ended) != 1 || f.ended[0] != tc.ended) {
				t.Errorf("ended %q, want %q", f.ended, tc.ended)
			}
			if tc.event != "" && (len(f.events) != 1 || f.events[0] != (guard.Event{Canary: c.ID, CanaryName: c.Name, Analysis: c.Analysis, Outcome: tc.phase, Reason: tc.event})) {
				t.Errorf("events %+v", f.events)
			}
		})
	}
}

// event writes the audit log with the canary the checksum names, the token left out and
// a hostile message made one harmless line.
func TestEvent(t *testing.T) {
	f := newFake()
	c := f.add("abc123", analysis.StatusRunning, "")
	md := map[string]string{"eventMessage": "Halt advancement\nfake: entry\u2028\x00" + strings.Repeat("x", 2000), "eventType": "Warning",
		"timestamp": "1764590000000", "token": "secret-token-0123456789abcdef"}
	code, a := call(t, serve(f), flagger.Event, body("abc123", md))
	if code != 200 || a["canary"] != c.ID || len(f.events) != 1 {
		t.Fatalf("%d %v %+v", code, a, f.events)
	}
	e := f.events[0]
	if e.Canary != c.ID || e.CanaryName != "test/podinfo" || e.Analysis != "golden" || e.Outcome != "Warning" ||
		!strings.HasPrefix(e.Reason, "Flagger (Progressing): Halt advancement fake: entry") || len(e.Reason) > analysis.MaxReasonLen {
		t.Errorf("event %+v", e)
	}
	if i, what := analysis.BadText(e.Reason); i >= 0 {
		t.Errorf("the reason holds %s at %d", what, i)
	}
	if strings.Contains(e.Reason+e.Outcome, "secret-token") {
		t.Errorf("the token reached the audit log: %+v", e)
	}
	// An event about a rollout canaryd holds no canary for is recorded all the same.
	code, _ = call(t, serve(f), flagger.Event, `{"name":"other","namespace":"test","phase":"Initializing","metadata":{"eventMessage":"Initialization done!","eventType":"Normal"}}`)
	if code != 200 || len(f.events) != 2 || f.events[1] != (guard.Event{CanaryName: "test/other", Outcome: "Normal", Reason: "Flagger (Initializing): Initialization done!"}) {
		t.Errorf("%d %+v", code, f.events)
	}
}
