package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/actuators/exec"
	"github.com/canaryd/canaryd/actuators/flag"
	"github.com/canaryd/canaryd/actuators/pagerduty"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics/cloudwatch"
	"github.com/canaryd/canaryd/metrics/datadog"
	"github.com/canaryd/canaryd/metrics/graphite"
	"github.com/canaryd/canaryd/metrics/newrelic"
)

const actBase = `
providers:
  prom: {type: prometheus, address: "http://127.0.0.1:9090"}
actuators:
  rollback: {type: exec, command: ["kubectl", "rollout", "undo", "deployment/{{ .Vars.app }}"], timeout: 60s}
  notify: {type: webhook, url: "http://127.0.0.1:9999/hook"}
  chat: {type: slack, url_env: SLACK_URL}
ACTUATORS
analyses:
  golden:
    provider: prom
    lifetime: 30m
    on_fail: [rollback, notify, chat]
    metrics:
      - name: errors
        query: 'errors{track="{{ .Cohort.track }}"}'
`

// TestExampleFiles is what keeps every example config valid: check-config, with the
// binary's kinds, accepts each of configs/*.yml.
func TestExampleFiles(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example config files found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runCheckConfig([]string{f}, &stdout, &stderr); code != 0 {
				t.Fatalf("check-config %s: exit %d\n%s", f, code, stderr.String())
			}
			if want := f + ": ok ("; !strings.HasPrefix(stdout.String(), want) || strings.Contains(stdout.String(), "analyses []") {
				t.Errorf("check-config %s: %q, want %q… with analyses", f, stdout.String(), want)
			}
		})
	}
}

// The example configs cite only documents that are in the repository (golden-signals.yml
// cited a DESIGN.md that is not).
func TestExampleFilesCiteExistingDocs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	docRe := regexp.MustCompile(`[\w./-]+\.md\b`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range docRe.FindAllString(string(b), -1) {
			if _, err := os.Stat(filepath.Join("../..", doc)); err != nil {
				t.Errorf("%s cites %s, which is not in the repository", filepath.Base(f), doc)
			}
		}
	}
}

// Each registered provider kind has its own default rate limit; an entry's rate_limit
// keeps the kind's default for what it leaves out.
func TestProviderRateLimitDefaults(t *testing.T) {
	c, err := config.Parse([]byte(`
providers:
  prom: {type: prometheus, address: "http://127.0.0.1:9090"}
  dd: {type: datadog}
  syn: {type: synthetic}
  cw: {type: cloudwatch, region: us-east-1}
  influx: {type: influxdb, address: "http://127.0.0.1:8086", database: app}
  graphite: {type: graphite, address: "http://127.0.0.1:8080"}
  nr: {type: newrelic, account_id: 1, api_key: NRAK-x}
  gcm: {type: gcm, project: canaryd-test-123, credentials_file: CREDS}
  web: {type: web, url: "http://127.0.0.1:8080/q?query={{ .Query }}", points: "$.points"}
  tuned: {type: prometheus, address: "http://127.0.0.1:9091", rate_limit: {qps: 5}}
analyses: {}
`), kinds())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]config.RateLimit{
		"prom":     {QPS: 100, Burst: 200},
		"dd":       {QPS: 0.4, Burst: 20},
		"syn":      {QPS: 10000, Burst: 10000},
		"cw":       {QPS: 10, Burst: 50},
		"influx":   {QPS: 100, Burst: 200},
		"web":      {QPS: 10, Burst: 50},
		"graphite": {QPS: 50, Burst: 100},
		"nr":       {QPS: 5, Burst: 25},
		"gcm":      {QPS: 10, Burst: 50},
		"tuned":    {QPS: 5, Burst: 200},
	} {
		if got := c.Providers[name].RateLimit; got != want {
			t.Errorf("providers.%s.rate_limit = %+v, want %+v", name, got, want)
		}
	}
}

func parseAct(t *testing.T, extra string) (*config.Config, error) {
	t.Helper()
	return config.Parse([]byte(strings.Replace(actBase, "ACTUATORS", extra, 1)), kinds())
}

func TestActuatorDefaults(t *testing.T) {
	c, err := parseAct(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Actuation != config.DefaultActuation() {
		t.Errorf("actuation defaults: %+v", c.Actuation)
	}
	rb, chat := c.Actuators["rollback"], c.Actuators["chat"]
	if rb.Notification || rb.Breaker != (config.Breaker{Max: 3, Window: model.Duration(time.Hour)}) || rb.Cooldown != 10*time.Minute || rb.Attempts != 1 || rb.Resume != config.ResumeRetry {
		t.Errorf("rollback: %+v", rb)
	}
	if ec := rb.Config.(exec.Config); len(ec.Command) != 4 || time.Duration(ec.Timeout) != time.Minute || !ec.InheritEnv {
		t.Errorf("exec config: %+v", ec)
	}
	if !chat.Notification || chat.Breaker.Max != 0 || chat.Cooldown != 0 || chat.Attempts != 3 {
		t.Errorf("notifications have no breaker or cooldown by default: %+v", chat)
	}
	if c.Actuators["notify"].Attempts != 3 || c.Analyses["golden"].RequireApproval {
		t.Errorf("notify %+v", c.Actuators["notify"])
	}
	// The entry's own keys win over the block's.
	c, err = config.Parse([]byte(strings.Replace(strings.Replace(actBase, "ACTUATORS",
		"actuation: {dry_run: true, service_var: service, breaker: {max: 5, window: 2h}, cooldown: 1m}", 1),
		`timeout: 60s}`, `timeout: 60s, breaker: {max: 1}, cooldown: 0s, attempts: 2, resume: skip}`, 1)), kinds())
	if err != nil {
		t.Fatal(err)
	}
	rb = c.Actuators["rollback"]
	if rb.Breaker.Max != 1 || rb.Breaker.Window != model.Duration(time.Hour) || rb.Cooldown != 0 || rb.Attempts != 2 || rb.Resume != config.ResumeSkip {
		t.Errorf("overrides: %+v", rb)
	}
	if n := c.Actuators["notify"]; n.Breaker.Max != 5 || n.Cooldown != time.Minute || !c.Actuation.DryRun || c.Actuation.ServiceVar != "service" {
		t.Errorf("block: %+v %+v", n, c.Actuation)
	}
}

func TestActuatorErrors(t *testing.T) {
	cases := []struct {
		name  string
		extra string
		want  []string
	}{
		{
			name:  "exec timeout",
			extra: `  undo: {type: exec, command: [kubectl], timeout: 0s}`,
			want:  []string{"actuators.undo.timeout: must be > 0"},
		},
		{
			name:  "exec argv template",
			extra: `  undo: {type: exec, command: [kubectl, "deployment/{{ .Vars.app"]}`,
			want:  []string{"actuators.undo.command[1]: parse template: template: command[1]:1: unclosed action"},
		},
		{
			name:  "unknown key",
			extra: `  hook: {type: webhook, url: "http://x/", retries: 3}`,
			want:  []string{`actuators.hook: unknown field "retries"`},
		},
		{
			name:  "several errors",
			extra: `  hook: {type: webhook, url: "ftp://x", timeout: 0s, attempts: 0, resume: maybe, breaker: {max: -1}}`,
			want: []string{
				"actuators.hook.breaker.max: must be >= 0 (0 disables the breaker)",
				"actuators.hook.attempts: must be in [1, 10]",
				`actuators.hook.resume: "maybe" is not retry or skip`,
				`actuators.hook.url: URL scheme must be http or https, got "ftp"`,
				"actuators.hook.timeout: must be > 0",
			},
		},
		{
			name:  "pagerduty",
			extra: `  page: {type: pagerduty, severity: sev1}`,
			want: []string{
				"actuators.page.routing_key_env: required",
				`actuators.page.severity: "sev1" is not one of [critical error warning info]`,
			},
		},
		{
			name:  "grafana",
			extra: `  annotate: {type: grafana, url: "grafana.example.com", panel_id: 2, tags: ["{{ .Sevrice }}"]}`,
			want: []string{
				`actuators.annotate.url: URL scheme must be http or https, got ""`,
				"actuators.annotate.token_file: required (or token_env): the service account token",
				"actuators.annotate.panel_id: needs dashboard_uid: a panel belongs to a dashboard",
				"actuators.annotate.tags[0]: .Sevrice is not a field of the event (see the template fields in actuators/README.md)",
			},
		},
		{
			name:  "datadog_event",
			extra: `  dd: {type: datadog_event, site: "https://datadoghq.eu", alert_type: critical}`,
			want: []string{
				`actuators.dd.site: "https://datadoghq.eu" must be a bare site name such as datadoghq.eu; use api_url for a full URL`,
				"actuators.dd.alert_type: \"critical\" is not one of [error warning info success user_update recommendation snapshot]",
			},
		},
		{
			name:  "flag",
			extra: `  ld: {type: flag, url: "https://app.launchdarkly.com/x", secrets: {k: "bad name"}, headers: {"Bad Header": x}}`,
			want: []string{
				"actuators.ld.headers.Bad Header: not a valid header name",
				`actuators.ld.secrets.k: "bad name" is not an environment variable name`,
			},
		},
		{
			name:  "actuation block",
			extra: "actuation: {workers: 0, external_url: 'x', service_var: 'a-b'}",
			want: []string{
				`actuation.service_var: "a-b" is not a variable name`,
				"actuation.workers: must be in [1, 64]",
				"actuation.external_url: must be an http or https URL with a host",
			},
		},
		{
			name:  "webhook header with a secret",
			extra: `  hook: {type: webhook, url: "http://x/", headers: {Authorization: "Bearer {{ .Secrets.token }}"}}`,
			want:  []string{"actuators.hook.headers.Authorization: .Secrets.token: this actuator has no secrets (only a flag actuator's secrets: map defines .Secrets)"},
		},
		{
			name:  "flag secret not defined",
			extra: `  ld: {type: flag, url: "https://x/{{ .Secrets.proj }}", body: '{{ $.Secrets.tok }}', secrets: {token: T}, headers: {A: "{{ .Secrets.token }}"}}`,
			want: []string{
				"actuators.ld.url: .Secrets.proj is not defined: secrets: defines [token]",
				"actuators.ld.body: .Secrets.tok is not defined: secrets: defines [token]",
			},
		},
		{
			name:  "unknown event field",
			extra: `  undo: {type: exec, command: [kubectl, "{{ .Sevrice }}", "{{ range .Failing }}{{ .Name }}{{ end }}"], env: {S: "{{ .ScoreText }}"}}`,
			want:  []string{"actuators.undo.command[1]: .Sevrice is not a field of the event (see the template fields in actuators/README.md)"},
		},
		{
			name:  "http_config",
			extra: `  hook: {type: webhook, url: "http://x/", http_config: {bearer_token: a, bearer_token_file: b}}`,
			want:  []string{"actuators.hook: at most one of bearer_token & bearer_token_file must be configured"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAct(t, tc.extra)
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want config.Errors, got %v", err)
			}
			var got []string
			for _, e := range errs {
				// Config-level follow-ups (an analysis naming the broken actuator) are
				// not what this test is about.
				if !strings.HasPrefix(e.Path, "analyses.") {
					got = append(got, e.Error())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// An analysis may name its own service variable; it must be a variable name.
func TestAnalysisServiceVar(t *testing.T) {
	c, err := config.Parse([]byte(strings.Replace(strings.Replace(actBase, "ACTUATORS", "", 1), "lifetime: 30m", "lifetime: 30m\n    service_var: svc", 1)), kinds())
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Analyses["golden"]; a.ServiceVarOr(c.Actuation.ServiceVar) != "svc" || !a.Actuators() {
		t.Errorf("service_var %q", a.ServiceVar)
	}
	if (&config.Analysis{}).ServiceVarOr("app") != "app" {
		t.Error("default")
	}
	_, err = config.Parse([]byte(strings.Replace(strings.Replace(actBase, "ACTUATORS", "", 1), "lifetime: 30m", "lifetime: 30m\n    service_var: a-b", 1)), kinds())
	if err == nil || !strings.Contains(err.Error(), `analyses.golden.service_var: "a-b" is not a variable name`) {
		t.Errorf("got %v", err)
	}
}

// The negative cooldown of the block is reported too (model.Duration refuses it while
// decoding), with the path down to the key.
func TestActuationNegativeDuration(t *testing.T) {
	_, err := parseAct(t, "actuation: {cooldown: -1s}")
	if err == nil || !strings.Contains(err.Error(), `actuation.cooldown: not a valid duration string: "-1s"`) {
		t.Errorf("got %v", err)
	}
}

func TestActuatorBuild(t *testing.T) {
	c, err := parseAct(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Actuators["chat"].Build(actuators.Options{}); err == nil || !strings.Contains(err.Error(), "actuator chat: slack chat: url_env: environment variable SLACK_URL is not set") {
		t.Errorf("missing secret: %v", err)
	}
	t.Setenv("SLACK_URL", "http://127.0.0.1:9/services/x")
	for name, a := range c.Actuators {
		if _, err := a.Build(actuators.Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c2, _ := parseAct(t, "")
	if !c.Actuators["rollback"].Unchanged(c2.Actuators["rollback"]) {
		t.Error("same entry reported changed")
	}
	c3, _ := config.Parse([]byte(strings.Replace(strings.Replace(actBase, "ACTUATORS", "", 1), "timeout: 60s", "timeout: 90s", 1)), kinds())
	if c.Actuators["rollback"].Unchanged(c3.Actuators["rollback"]) {
		t.Error("changed entry reported unchanged")
	}
}

// The rollback presets render the commands their comments promise.
func TestRollbackPresets(t *testing.T) {
	c, err := config.Load("../../configs/rollback-presets.yml", kinds())
	if err != nil {
		t.Fatal(err)
	}
	ev := actuators.Event{Vars: map[string]string{"app": "checkout", "namespace": "shop", "previous_revision": "41", "cluster": "prod-eu"}}
	for name, want := range map[string]string{
		"kubectl-undo":  "kubectl rollout undo --namespace=shop -- deployment/checkout",
		"argo-abort":    "kubectl argo rollouts abort --namespace=shop -- checkout",
		"helm-rollback": "helm rollback --namespace=shop --wait --timeout=5m -- checkout 41",
	} {
		act, err := c.Actuators[name].Build(actuators.Options{})
		if err != nil {
			t.Fatal(err)
		}
		req, err := act.Render(ev)
		if err != nil || req.Target != want {
			t.Errorf("%s: %q %v, want %q", name, req.Target, err, want)
		}
		// A hostile value stays a value: after "--", or glued to its flag.
		for _, v := range []string{"app", "namespace", "previous_revision"} {
			bad := actuators.Event{Vars: maps.Clone(ev.Vars)}
			bad.Vars[v] = "--kubeconfig=/tmp/evil"
			req, err := act.Render(bad)
			if err != nil {
				t.Errorf("%s with %s=--kubeconfig: %v", name, v, err)
				continue
			}
			for i, a := range req.Argv {
				if strings.HasPrefix(a, "--kubeconfig") && !slices.Contains(req.Argv[:i], "--") {
					t.Errorf("%s: vars.%s became option %q: %q", name, v, a, req.Argv)
				}
			}
		}
	}
	if c.Actuators["kubectl-undo"].Resume != config.ResumeSkip || c.Actuators["argo-abort"].Attempts != 2 {
		t.Errorf("presets' safety keys: %+v %+v", c.Actuators["kubectl-undo"], c.Actuators["argo-abort"])
	}
}

// The kill-switch presets, pointed at loopback fakes of LaunchDarkly and of a flag
// service, send what those APIs take.
func TestKillSwitchPresets(t *testing.T) {
	c, err := config.Load("../../configs/killswitch-presets.yml", kinds())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Analyses["killswitch"].RequireApproval || c.Actuation.ExternalURL != "https://canaryd.example.com" {
		t.Errorf("analysis %+v", c.Analyses["killswitch"])
	}
	// The deploy-window notices: a change event (which pages nobody) and an annotation.
	if got := c.Analyses["killswitch"].Hook("on_start"); !slices.Equal(got, []string{"slack-deploys", "pd-changes", "annotate"}) {
		t.Errorf("on_start: %v", got)
	}
	if pc := c.Actuators["pd-changes"].Config.(pagerduty.Config); pc.Mode != pagerduty.ModeChange || pc.Endpoint() != pagerduty.DefaultChangeURL ||
		pc.Summary != pagerduty.DefaultChangeSummary || !c.Actuators["annotate"].Notification {
		t.Errorf("pd-changes: %+v", pc)
	}
	t.Setenv("LD_API_KEY", "api-key-1")
	t.Setenv("FLAGS_TOKEN", "tok-1")
	type hit struct {
		method, path, auth, ctype string
		body                      map[string]any
	}
	var hits []hit
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := hit{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type")}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &h.body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		hits = append(hits, h)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"key":"new-checkout"}`)
	}))
	t.Cleanup(srv.Close)
	ev := actuators.Event{Key: "c1/on_fail/x", ID: "c1", Name: "checkout v7", Status: "fail", Reason: `p99 "high"`,
		Vars: map[string]string{"ld_project": "shop", "flag": "new-checkout", "ld_environment": "production"}}
	for _, name := range []string{"launchdarkly-off", "flags-off"} {
		fc := c.Actuators[name].Config.(flag.Config)
		// Same path, loopback host.
		for _, host := range []string{"https://app.launchdarkly.com", "http://flags.internal:8080"} {
			fc.URL = strings.Replace(fc.URL, host, srv.URL, 1)
		}
		f, err := flag.New(fc, actuators.Options{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Act(t.Context(), ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	ld, own := hits[0], hits[1]
	ins, _ := ld.body["instructions"].([]any)
	if ld.method != "PATCH" || ld.path != "/api/v2/flags/shop/new-checkout" || ld.auth != "api-key-1" ||
		ld.ctype != "application/json; domain-model=launchdarkly.semanticpatch" || ld.body["environmentKey"] != "production" ||
		len(ins) != 1 || ins[0].(map[string]any)["kind"] != "turnFlagOff" || ld.body["comment"] != `canaryd: canary checkout v7 (c1) fail: p99 "high"` {
		t.Errorf("LaunchDarkly request: %+v", ld)
	}
	if own.method != "PUT" || own.path != "/v1/flags/new-checkout/state" || own.auth != "Bearer tok-1" || own.body["enabled"] != false || own.body["canary"] != "c1" {
		t.Errorf("flag service request: %+v", own)
	}
}

// FuzzActuator: no actuator entry makes the loader panic, and every accepted entry has
// its kind's config decoded.
func FuzzActuator(f *testing.F) {
	f.Add("  x: {type: exec, command: [kubectl, \"{{ .Vars.app }}\"], timeout: 10s, resume: skip}")
	f.Add("  x: {type: webhook, url: \"http://h/{{ .ID }}\", headers: {A: b}, secret_env: S, breaker: {max: 1, window: 5m}}")
	f.Add("  x: {type: flag, method: put, url: \"http://h/\", body: \"{{ json .Reason }}\", secrets: {t: T}}")
	f.Add("  x: {type: slack, url_env: U, max_metrics: 3, notification: false, cooldown: 5m}")
	f.Add("  x: {type: pagerduty, routing_key_env: K, severity: info, attempts: 10}")
	f.Add("  x: {type: datadog_event, site: datadoghq.eu, api_key_env: K, tags: [a], alert_type: info, priority: low}")
	f.Add("  x: {type: grafana, url: 'https://g/', token_env: G, dashboard_uid: d, panel_id: 1, tags: [a], region: false}")
	f.Add("actuation: {breaker: {max: 0}, dry_run: true}")
	if b, err := os.ReadFile("../../configs/killswitch-presets.yml"); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, extra string) {
		c, err := config.Parse([]byte(strings.Replace(actBase, "ACTUATORS", extra, 1)), kinds())
		if err != nil {
			return
		}
		for name, a := range c.Actuators {
			if a.Config == nil || len(a.Source) == 0 || a.Attempts < 1 || (a.Resume != config.ResumeRetry && a.Resume != config.ResumeSkip) {
				t.Fatalf("%s accepted half-decoded: %+v", name, a)
			}
		}
	})
}

// The providers whose buckets are on a grid of their own tell the scheduler so, which
// refuses counts and histogram metrics of a canary off that grid.
var _ = []analysis.StepAligner{(*datadog.Provider)(nil), (*cloudwatch.Provider)(nil), (*newrelic.Provider)(nil), (*graphite.Provider)(nil)}

// Graphite's per-step counts are not whole yet: the scheduler says so instead of judging.
var _ analysis.WholeSteps = (*graphite.Provider)(nil)
