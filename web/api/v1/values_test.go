package v1

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// providersConfig has one analysis per provider kind; the providers are built as canaryd
// serve builds them, so each declares its own value rules (nothing is queried here).
const providersConfig = `
providers:
  prom: {type: prometheus, address: "http://127.0.0.1:1"}
  dd: {type: datadog, api_url: "http://127.0.0.1:1", api_key_env: CANARYD_TEST_DD_API_KEY, app_key_env: CANARYD_TEST_DD_APP_KEY}
  syn: {type: synthetic}
analyses:
  golden:
    provider: prom
    interval: 1m
    lifetime: 30m
    metrics:
      - name: errors
        query: 'errors{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}'
  on-prom:
    provider: prom
    interval: 1m
    lifetime: 30m
    metrics:
      - name: errors
        query: 'sum(rate(errors{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}[1m]))'
  on-datadog:
    provider: dd
    interval: 1m
    lifetime: 30m
    metrics:
      - name: errors
        query: 'sum:trace.http.request.errors{service:{{ .Vars.app }},track:{{ .Cohort.track }}}.as_rate()'
  on-synthetic:
    provider: syn
    interval: 1m
    lifetime: 30m
    metrics:
      - name: errors
        query: 'signal=error_rate cohort={{ .Cohort.track }} app={{ .Vars.app }}'
`

func newProvidersAPI(t testing.TB) (http.Handler, *analysis.Scheduler) {
	t.Helper()
	t.Setenv("CANARYD_TEST_DD_API_KEY", "k")
	t.Setenv("CANARYD_TEST_DD_APP_KEY", "k")
	cfg, err := config.Parse([]byte(providersConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	// A fuzz target must not log through f.
	log := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt)
	}
	provs := map[string]metrics.Provider{}
	for name, p := range cfg.Providers {
		if provs[name], err = p.Build(log); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	sched := analysis.NewScheduler(analysis.Options{Store: memstore.New(), Logger: log, Metrics: analysis.NewMetrics(reg), Limits: analysis.LimitsOf(cfg.Server)})
	sched.SetEnv(&analysis.Env{Config: cfg, Providers: provs})
	// Not started: nothing is judged, registrations are only validated and stored.
	t.Cleanup(func() { sched.Stop(context.Background()) })
	return New(Options{Reader: sched, Registrar: sched, Operator: sched, Gatherer: reg, Logger: log}), sched
}

// A value is pasted into its provider's query language: what that language gives meaning
// to is refused with 400 naming the variable, so a value fills its place in the query and
// never rewrites it (quotes alone protect PromQL, not a Datadog scope).
func TestValuesFitTheProvidersQueryLanguage(t *testing.T) {
	srv, _ := newProvidersAPI(t)
	body := func(analysis, app, track string) string {
		return `{"name":"x","analysis":"` + analysis + `","baseline":{"track":"stable"},"canary":{"track":` + jsonString(track) + `},"vars":{"app":` + jsonString(app) + `,"owner":"team a, b & c"}}`
	}
	cases := []struct {
		name, analysis, app, track string
		code                       int
		field                      string
	}{
		{"datadog: a wildcard and a negated tag", "on-datadog", "*,!env:prod", "canary", 400, "vars.app"},
		{"datadog: closing the scope", "on-datadog", "web", "v2} OR sum:other{service:x", 400, "canary.track"},
		{"datadog: another tag", "on-datadog", "web,env:staging", "canary", 400, "vars.app"},
		{"datadog: a space", "on-datadog", "web", "can ary", 400, "canary.track"},
		{"datadog: a wildcard alone", "on-datadog", "*", "canary", 400, "vars.app"},
		{"datadog: an opening brace", "on-datadog", "web{", "canary", 400, "vars.app"},
		{"datadog: a pipe", "on-datadog", "web|x", "canary", 400, "vars.app"},
		{"datadog: longer than a tag", "on-datadog", strings.Repeat("a", 201), "canary", 400, "vars.app"},
		{"datadog: a tag value's characters", "on-datadog", "checkout-v2.1/eu:1_a", "canary", 201, ""},
		{"datadog: Unicode letters", "on-datadog", "ウェブ", "canary", 201, ""},
		{"synthetic: a space adds a word", "on-synthetic", "web", "canary seed=1", 400, "canary.track"},
		{"synthetic: a no-break space adds a word", "on-synthetic", "web", "canary\u00a0streams=1000", 400, "canary.track"},
		{"synthetic: an equals sign", "on-synthetic", "a=b", "canary", 400, "vars.app"},
		{"synthetic: a plain value", "on-synthetic", "web", "canary", 201, ""},
		{"prometheus: a quote ends the label", "on-prom", "web", `canary"} or up{x="`, 400, "canary.track"},
		{"prometheus: a backslash", "on-prom", `web\`, "canary", 400, "vars.app"},
		{"prometheus: a Datadog scope is just a value", "on-prom", "*,!env:prod", "v2} OR sum:other{service:x", 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", body(tc.analysis, tc.app, tc.track))
			if f, _ := out["field"].(string); code != tc.code || f != tc.field {
				t.Errorf("%d field %q, want %d %q (%v)", code, f, tc.code, tc.field, out["error"])
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
