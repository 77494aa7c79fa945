package flag

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
	e := testutil.Event("ld")
	e.Reason = `error-rate "high"`
	e.Vars = map[string]string{"ld_project": "default", "flag": "new-checkout", "ld_environment": "production"}
	return e
}

// fakeLaunchDarkly answers PATCH /api/v2/flags/{project}/{flag} as LaunchDarkly's API
// documents: the API key as is in Authorization, a semantic patch (Content-Type with
// domain-model=launchdarkly.semanticpatch, instructions with a kind) answered 200 with
// the flag; 401 for a wrong key, 400 for a malformed patch.
type fakeLaunchDarkly struct {
	t       *testing.T
	key     string
	patches []map[string]any
	keys    []string
}

func (f *fakeLaunchDarkly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPatch || !strings.HasPrefix(r.URL.Path, "/api/v2/flags/") {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"code":"not_found","message":"Unknown resource"}`)
		return
	}
	if r.Header.Get("Authorization") != f.key {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":"unauthorized","message":"Invalid access token"}`)
		return
	}
	var patch map[string]any
	if r.Header.Get("Content-Type") != "application/json; domain-model=launchdarkly.semanticpatch" ||
		json.NewDecoder(r.Body).Decode(&patch) != nil || patch["instructions"] == nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":"invalid_request","message":"malformed semantic patch"}`)
		return
	}
	f.patches = append(f.patches, patch)
	f.keys = append(f.keys, r.Header.Get(actuators.HeaderIdempotencyKey))
	parts := strings.Split(r.URL.Path, "/")
	io.WriteString(w, `{"key":"`+parts[len(parts)-1]+`","environments":{"production":{"on":false}}}`)
}

// ldConfig is configs/killswitch-presets.yml's launchdarkly-off, pointed at base.
func ldConfig(base string) Config {
	c := DefaultConfig()
	c.URL = base + "/api/v2/flags/{{ .Vars.ld_project }}/{{ .Vars.flag }}"
	c.Headers = map[string]string{
		"Authorization": "{{ .Secrets.api_key }}",
		"Content-Type":  "application/json; domain-model=launchdarkly.semanticpatch",
	}
	c.Body = `{"environmentKey": "{{ .Vars.ld_environment }}", "instructions": [{"kind": "turnFlagOff"}],
	  "comment": {{ printf "canaryd: canary %s (%s) %s: %s" .Name .ID .Status .Reason | json }}}`
	c.Secrets = map[string]string{"api_key": "LD_API_KEY"}
	return c
}

func TestFlagLaunchDarkly(t *testing.T) {
	t.Setenv("LD_API_KEY", "api-0123456789")
	ld := &fakeLaunchDarkly{t: t, key: "api-0123456789"}
	srv := httptest.NewServer(ld)
	t.Cleanup(srv.Close)
	f, err := New(ldConfig(srv.URL), actuators.Options{Name: "ld"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Act(t.Context(), event())
	if err != nil || res.Status != 200 || !strings.Contains(res.Output, `"key":"new-checkout"`) {
		t.Fatalf("act: %+v %v", res, err)
	}
	p := ld.patches[0]
	ins := p["instructions"].([]any)[0].(map[string]any)
	if p["environmentKey"] != "production" || ins["kind"] != "turnFlagOff" || p["comment"] != `canaryd: canary web v2 (c1) fail: error-rate "high"` || ld.keys[0] != "c1/on_fail/ld" {
		t.Errorf("patch %v key %v", p, ld.keys)
	}
	// The audit log's view never shows the key.
	req, err := f.Render(event())
	if err != nil || req.Header["Authorization"] != actuators.Secret || req.Method != "PATCH" ||
		req.URL != srv.URL+"/api/v2/flags/default/new-checkout" || strings.Contains(req.Body, "api-0123456789") {
		t.Errorf("render: %+v %v", req, err)
	}
}

func TestFlagErrors(t *testing.T) {
	t.Setenv("LD_API_KEY", "wrong-key-123")
	ld := &fakeLaunchDarkly{t: t, key: "right-key"}
	srv := httptest.NewServer(ld)
	t.Cleanup(srv.Close)
	f, err := New(ldConfig(srv.URL), actuators.Options{Name: "ld"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Act(t.Context(), event())
	if err == nil || actuators.IsRetryable(err) || !strings.Contains(err.Error(), "401") {
		t.Errorf("401: want a final error, got %v", err)
	}
	// A body the template's own text broke is caught before it is sent.
	c := ldConfig(srv.URL)
	c.Body = `{"comment": "{{ .Reason }}"` // no closing brace
	f, err = New(c, actuators.Options{Name: "ld"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Act(t.Context(), event()); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("broken body: %v", err)
	}
	if len(ld.patches) != 0 {
		t.Errorf("sent %v", ld.patches)
	}
	// The secret must be in the environment when the actuator is built.
	c = ldConfig(srv.URL)
	c.Secrets = map[string]string{"api_key": "CANARYD_TEST_UNSET"}
	if _, err := New(c, actuators.Options{Name: "ld"}); err == nil || !strings.Contains(err.Error(), "secrets.api_key: environment variable CANARYD_TEST_UNSET") {
		t.Errorf("unset secret: %v", err)
	}
}

// A self-hosted flag service that echoes the request back must not get the token into
// the audit log through the output.
func TestFlagSelfHostedRedactsEcho(t *testing.T) {
	t.Setenv("FLAGS_TOKEN", "tok-abcdef")
	var got struct {
		method, auth string
		body         map[string]any
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.auth = r.Method, r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got.body)
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "cannot update flag for "+got.auth)
	}))
	t.Cleanup(srv.Close)
	c := DefaultConfig()
	c.Method = "put"
	c.URL = srv.URL + "/v1/flags/{{ .Vars.flag }}/state"
	c.Headers = map[string]string{"Authorization": "Bearer {{ .Secrets.token }}"}
	c.Body = `{"enabled": false, "reason": {{ json .Reason }}, "canary": {{ json .ID }}}`
	c.Secrets = map[string]string{"token": "FLAGS_TOKEN"}
	f, err := New(c, actuators.Options{Name: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Act(t.Context(), event())
	if !actuators.IsRetryable(err) || got.method != "PUT" || got.auth != "Bearer tok-abcdef" || got.body["enabled"] != false || got.body["canary"] != "c1" {
		t.Fatalf("err %v, got %+v", err, got)
	}
	if strings.Contains(res.Output, "tok-abcdef") || !strings.Contains(res.Output, "Bearer <secret>") {
		t.Errorf("output leaks the token: %q", res.Output)
	}
}

func TestFlagConfig(t *testing.T) {
	c := DefaultConfig()
	c.Method = "TRACE"
	c.URL = ""
	c.Secrets = map[string]string{"t": "not-an-env"}
	c.Body = "{{ .X"
	want := strings.Join([]string{`method: "TRACE" is not one of [POST PUT PATCH DELETE GET]`, `url: required`, `body: parse template: template: body:1: unclosed action`, `secrets.t: "not-an-env" is not an environment variable name`}, "\n")
	if got := c.Validate().Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// The flag's URL escapes each variable for where it lands, as the webhook's does.
func TestFlagURLEscapesVars(t *testing.T) {
	const attack = "../../admin/delete?all=1&x="
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.EscapedPath() + " " + r.URL.RawQuery
	}))
	t.Cleanup(srv.Close)
	c := DefaultConfig()
	c.Method = http.MethodPut
	c.URL = srv.URL + "/v1/flags/{{ .Vars.flag }}/state?env={{ .Vars.env }}"
	f, err := New(c, actuators.Options{Name: "flags-off"})
	if err != nil {
		t.Fatal(err)
	}
	e := event()
	e.Vars = map[string]string{"flag": attack, "env": attack}
	if _, err := f.Act(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if s, want := <-got, "/v1/flags/..%2F..%2Fadmin%2Fdelete%3Fall=1&x=/state env=..%2F..%2Fadmin%2Fdelete%3Fall%3D1%26x%3D"; s != want {
		t.Errorf("got %q, want %q", s, want)
	}
}

// Values in a JSON body are escaped where they land: a secret with a quote and a
// backslash, a reason with quotes, a variable trying to add a key. The receiver gets
// each exactly, the body stays the keys the template wrote, and neither an error nor
// the audit view shows the secret.
func TestFlagJSONBodyEscapesValues(t *testing.T) {
	const secret = `s3cr"et\x`
	t.Setenv("FLAGS_TOKEN", secret)
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		bodies = append(bodies, b)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	c := DefaultConfig()
	c.URL = srv.URL + "/flags"
	c.Body = `{"token": "{{ .Secrets.token }}", "reason": "canary {{ .Name }}: {{ .Reason }}", "env": {{ .Vars.ld_environment }}, "score": {{ .ScoreText }}}`
	c.Secrets = map[string]string{"token": "FLAGS_TOKEN"}
	f, err := New(c, actuators.Options{Name: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	e := event()
	e.Vars["ld_environment"] = `1, "enabled": true`
	score := 40.0
	e.Score = &score
	if res, err := f.Act(t.Context(), e); err != nil {
		t.Fatalf("act: %+v %v", res, err)
	}
	want := map[string]any{"token": secret, "reason": `canary web v2: error-rate "high"`, "env": `1, "enabled": true`, "score": 40.0}
	if len(bodies) != 1 || len(bodies[0]) != len(want) {
		t.Fatalf("bodies %v", bodies)
	}
	for k, v := range want {
		if bodies[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, bodies[0][k], v)
		}
	}
	req, err := f.Render(e)
	if err != nil || strings.Contains(req.Body, "s3cr") || !json.Valid([]byte(req.Body)) {
		t.Errorf("render: %q %v", req.Body, err)
	}

	// A body broken by its own text fails without showing the rendered secret.
	c.Body = `{"token": "{{ .Secrets.token }}"`
	f, err = New(c, actuators.Options{Name: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Act(t.Context(), e)
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") || strings.Contains(err.Error(), "s3cr") {
		t.Errorf("broken body: %v", err)
	}
}

func TestJSONTemplateContexts(t *testing.T) {
	cases := []struct {
		name, tmpl, want string
	}{
		{"in a string", `{"a": "x{{ .Reason }}y"}`, `{"a": "xq\"uote\\y"}`},
		{"a value", `{"a": {{ .Reason }}}`, `{"a": "q\"uote\\"}`},
		{"already json", `{"a": {{ json .Reason }}}`, `{"a": "q\"uote\\"}`},
		{"escaped quote in text", `{"a": "\"{{ .Reason }}"}`, `{"a": "\"q\"uote\\"}`},
		{"number text", `{"a": {{ .ScoreText }}}`, `{"a": "n/a"}`},
		{"if", `{"a": "{{ if .DryRun }}dry{{ else }}{{ .Reason }}{{ end }}"}`, `{"a": "q\"uote\\"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm, err := actuators.ParseJSONTemplate("body", c.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tm.Render(actuators.Data{Event: actuators.Event{Reason: `q"uote\`}})
			if err != nil || got != c.want {
				t.Errorf("got %s %v, want %s", got, err, c.want)
			}
		})
	}
	if _, err := actuators.ParseJSONTemplate("body", `{"a": {{ if .DryRun }}"{{ end }}x"}`); err == nil {
		t.Error("an if that opens a string was accepted")
	}
}
