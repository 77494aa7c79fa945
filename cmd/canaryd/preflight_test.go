package main

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// preflightConfig: an exec rollback whose preflight checks that a previous revision
// exists (a file standing in for `kubectl rollout history`), a kill switch whose
// preflight reads the flag from a loopback flag service, and three analyses: warn (the
// default), refuse, and one whose preflight needs a variable nothing else uses.
const preflightConfig = `
server: {min_interval: 1s}
providers:
  sim: {type: synthetic, seed: 5}
actuators:
  undo:
    type: exec
    command: ["/bin/true"]
    preflight: ["/bin/sh", "-c", "test -e \"$0/$1\" || { echo \"deployment/$1 has no previous revision\" >&2; exit 1; }; echo \"deployment/$1: revision 41\"", "%s", "{{ .Vars.app }}"]
    preflight_timeout: 5s
  killswitch:
    type: flag
    method: PATCH
    url: "%s/v1/flags/{{ .Vars.app }}-new-path"
    body: '{"on": false}'
    preflight_url: "%s/v1/flags/{{ .Vars.app }}-new-path"
    preflight_on: "/on"
  can-i:
    type: exec
    command: ["/bin/true"]
    preflight: ["/bin/echo", "--namespace={{ .Vars.ns }}"]
analyses:
  warned:
    provider: sim
    lifetime: 1h
    on_fail: [undo, killswitch]
    metrics: &m
      - {name: error-rate, query: 'signal=error_rate cohort={{ .Cohort.track }}'}
  refused:
    provider: sim
    lifetime: 1h
    preflight: refuse
    on_fail: [undo, killswitch]
    metrics: *m
  needs-ns:
    provider: sim
    lifetime: 1h
    on_fail: [can-i]
    metrics: *m
`

// fakeFlags is a self-hosted flag service: GET /v1/flags/{name} answers the flag's
// state, or 404 {"error": "flag not found"}.
func fakeFlags(t *testing.T, flags map[string]bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		on, ok := flags[strings.TrimPrefix(r.URL.Path, "/v1/flags/")]
		if r.Method != http.MethodGet || !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error": "flag not found"}`)
			return
		}
		fmt.Fprintf(w, `{"name": %q, "on": %v}`, strings.TrimPrefix(r.URL.Path, "/v1/flags/"), on)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Issue 21: preflight checks through the real daemon, its API, its pages, its audit log
// and the canary create CLI.
func TestPreflightThroughDaemonAndCLI(t *testing.T) {
	dir := t.TempDir()
	revisions := filepath.Join(dir, "revisions")
	if err := os.MkdirAll(filepath.Join(revisions, "checkout"), 0o700); err != nil {
		t.Fatal(err)
	}
	flags := fakeFlags(t, map[string]bool{"checkout-new-path": true, "cart-new-path": true})
	cfgPath := filepath.Join(dir, "canaryd.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(preflightConfig, revisions, flags.URL, flags.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, cfgPath, filepath.Join(dir, "c.db"))
	reg := func(analysis, app string) map[string]any {
		return map[string]any{"name": app + " v2.14", "analysis": analysis, "vars": map[string]string{"app": app},
			"baseline": map[string]string{"track": "stable"}, "canary": map[string]string{"track": "canary"}}
	}
	type result struct {
		Actuator, Type, Target, Output, Error string
		OK                                    bool
		Status                                int
		Seconds                               float64
	}
	type view struct {
		ID        string
		Warnings  []string
		Preflight []result
	}
	count := func() int {
		var page struct{ Canaries []struct{ ID string } }
		p.call("GET", "/api/v1/canaries?limit=1000", nil, &page)
		return len(page.Canaries)
	}

	t.Run("all pass", func(t *testing.T) {
		var v view
		began := time.Now()
		if code := p.call("POST", "/api/v1/canaries", reg("refused", "checkout"), &v); code != http.StatusCreated {
			t.Fatalf("register: %d %+v", code, v)
		}
		took := time.Since(began)
		if len(v.Warnings) != 0 || len(v.Preflight) != 2 || !v.Preflight[0].OK || !v.Preflight[1].OK ||
			v.Preflight[0].Output != "deployment/checkout: revision 41\n" || v.Preflight[1].Target != "GET "+flags.URL+"/v1/flags/checkout-new-path" {
			t.Fatalf("answer %+v", v)
		}
		t.Logf("registration with 2 preflight checks (exec, flag), daemon built with -race: %s round trip; checks took %.1f ms and %.1f ms",
			took.Round(time.Millisecond), v.Preflight[0].Seconds*1000, v.Preflight[1].Seconds*1000)
	})

	t.Run("warn: registered, the warning on the canary, its page and the audit log", func(t *testing.T) {
		var v view
		if code := p.call("POST", "/api/v1/canaries", reg("warned", "cart"), &v); code != http.StatusCreated {
			t.Fatalf("register: %d %+v", code, v)
		}
		want := "preflight of actuator undo (exec) failed: /bin/sh: exit status 1; output: deployment/cart has no previous revision"
		if len(v.Warnings) != 1 || v.Warnings[0] != want {
			t.Fatalf("warnings %q, want [%q]", v.Warnings, want)
		}
		var got view
		p.call("GET", "/api/v1/canaries/"+v.ID, nil, &got)
		if len(got.Preflight) != 2 || got.Preflight[0].OK || got.Preflight[0].Status != 1 || !got.Preflight[1].OK || len(got.Warnings) != 1 {
			t.Errorf("stored %+v", got)
		}
		resp, err := http.Get(p.url + "/canaries/" + v.ID)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(html.UnescapeString(string(page)), want) || !strings.Contains(string(page), `id="preflight"`) {
			t.Errorf("the page does not show the warning:\n%s", page)
		}
		var audit struct {
			Entries []struct{ Kind, Canary, Actuator, Outcome, Output string }
		}
		p.call("GET", "/api/v1/audit?kind=preflight&canary="+v.ID, nil, &audit)
		outcomes := map[string]string{}
		for _, e := range audit.Entries {
			outcomes[e.Actuator] = e.Outcome
		}
		if len(audit.Entries) != 2 || outcomes["undo"] != "warn" || outcomes["killswitch"] != "ok" {
			t.Errorf("audit %+v", audit.Entries)
		}
	})

	t.Run("refuse: 409 naming the actuator and its output, nothing stored", func(t *testing.T) {
		before := count()
		var e struct {
			Error, Actuator string
			Preflight       []result
		}
		if code := p.call("POST", "/api/v1/canaries", reg("refused", "cart"), &e); code != http.StatusConflict {
			t.Fatalf("register: %d %+v", code, e)
		}
		if e.Actuator != "undo" || !strings.Contains(e.Error, "deployment/cart has no previous revision") || len(e.Preflight) != 2 {
			t.Errorf("answer %+v", e)
		}
		if after := count(); after != before {
			t.Errorf("%d canaries after a refusal, %d before", after, before)
		}
	})

	t.Run("a flag service that answers flag not found", func(t *testing.T) {
		var e struct {
			Error, Actuator string
		}
		if code := p.call("POST", "/api/v1/canaries", reg("refused", "search"), &e); code != http.StatusConflict {
			t.Fatalf("register: %d", code)
		}
		if !strings.Contains(e.Error, "preflight of actuator killswitch (flag) failed: GET "+flags.URL+"/v1/flags/search-new-path: 404 Not Found: the flag does not exist; output: {\"error\": \"flag not found\"}") {
			t.Errorf("answer %+v", e)
		}
	})

	t.Run("a variable only the preflight needs", func(t *testing.T) {
		var e struct{ Error, Field string }
		if code := p.call("POST", "/api/v1/canaries", reg("needs-ns", "checkout"), &e); code != http.StatusBadRequest || e.Field != "vars.ns" {
			t.Errorf("register: %d %+v, want 400 at vars.ns", code, e)
		}
	})

	cli := func(t *testing.T, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{"canary", "create", "--server", p.url, "--baseline", "track=stable", "--canary", "track=canary"}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}
	t.Run("the CLI prints the warning", func(t *testing.T) {
		code, out, errOut := cli(t, "--analysis", "warned", "--name", "cart v2.15", "--var", "app=cart")
		if code != exitPass || len(strings.TrimSpace(out)) == 0 || strings.Contains(out, "warning") {
			t.Fatalf("exit %d, stdout %q (want the id alone), stderr %q", code, out, errOut)
		}
		if want := "canaryd canary create: warning: preflight of actuator undo (exec) failed: /bin/sh: exit status 1; output: deployment/cart has no previous revision\n"; errOut != want {
			t.Errorf("stderr %q, want %q", errOut, want)
		}
	})
	t.Run("the CLI on a refusal", func(t *testing.T) {
		code, out, errOut := cli(t, "--analysis", "refused", "--name", "cart v2.15", "--var", "app=cart")
		if code != exitCLI || out != "" || !strings.Contains(errOut, "HTTP 409 from "+p.url+"/api/v1/canaries: analysis refused refuses the canary (preflight: refuse): preflight of actuator undo (exec) failed") ||
			!strings.Contains(errOut, "deployment/cart has no previous revision") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
}

// Which shipped kinds have a preflight check: a preflight key on the others is a config
// error naming it.
func TestKindsPreflight(t *testing.T) {
	want := map[string]bool{"exec": true, "webhook": true, "flag": true, "slack": true, "pagerduty": true, "grafana": false, "datadog_event": false}
	ks := kinds().Actuators
	for name, w := range want {
		k, ok := ks[name]
		if !ok {
			t.Errorf("kind %s is not registered", name)
			continue
		}
		if k.Preflight != w {
			t.Errorf("kind %s: Preflight %v, want %v", name, k.Preflight, w)
		}
	}
}
