package kayenta_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
	"github.com/canaryd/canaryd/web/auth"
	"github.com/canaryd/canaryd/web/kayenta"
)

// testConfig: the synthetic provider with a cohort whose error rate is ×10 (critical)
// and one whose saturation is +0.3 (15% of the score: marginal). The analysis renames
// Kayenta's scope to the variable track; "signals" takes its signal from an extended
// scope parameter, so that a bogus one puts the metric in error.
const testConfig = `
providers:
  sim:
    type: synthetic
    seed: 7
    regressions:
      checkout-bad: {error_rate: {ratio: 10}}
      checkout-busy: {saturation: {shift: 0.3}}
analyses:
  checkout:
    provider: sim
    interval: 10s
    step: 2s
    lifetime: 3m
    warmup: 20s
    groups: {errors: 50, latency: 35, saturation: 15}
    kayenta: {scope_var: track}
    metrics:
      - name: error-rate
        group: errors
        query: 'signal=error_rate cohort={{ .Cohort.track }} streams=3'
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.2, allowed_delta: 0.001, critical: true}
      - name: p50-latency
        group: latency
        query: 'signal=latency_p50 cohort={{ .Cohort.track }} streams=3'
        judge: {type: mannwhitney, direction: increase, allowed_increase: 1.2}
      - name: saturation
        group: saturation
        query: 'signal=saturation cohort={{ .Cohort.track }} streams=3'
        judge: {type: mannwhitney, direction: increase, allowed_delta: 0.05}
  signals:
    provider: sim
    step: 2s
    lifetime: 3m
    metrics:
      - name: errors
        query: 'signal={{ .Cohort.signal }} cohort={{ .Cohort.scope }}'
        judge: {type: mannwhitney, critical: true}
`

func testKinds() config.Kinds {
	return config.Kinds{Providers: map[string]config.ProviderKind{
		"synthetic": config.ProviderKindOf(synthetic.New, config.RateLimit{QPS: 10000, Burst: 10000}),
	}}
}

// newServer is the Kayenta routes on a real scheduler, store and synthetic provider.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	prov, err := cfg.Providers["sim"].Build(zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "c.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sched := analysis.NewScheduler(analysis.Options{Store: st, Logger: zaptest.NewLogger(t),
		Metrics: analysis.NewMetrics(prometheus.NewRegistry()), Limits: analysis.LimitsOf(cfg.Server)})
	sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"sim": prov}})
	if err := sched.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	kayenta.New(kayenta.Options{Canaries: sched, Logger: zaptest.NewLogger(t)}).Register(auth.NewRouter(mux, nil, kayenta.Surface))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		sched.Stop(t.Context())
		st.Close()
	})
	return srv
}

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return resp.StatusCode, out
}

// execBody is an execution request as Argo's kayenta provider sends it, with a field
// canaryd does not know (siteLocal) that it must ignore.
func execBody(control, experiment string, start, end time.Time, pass, marginal int) string {
	sc := func(s string) string {
		return fmt.Sprintf(`{"scope": %q, "location": "", "step": 2, "start": %q, "end": %q}`, s, start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return fmt.Sprintf(`{"scopes": {"default": {"controlScope": %s, "experimentScope": %s}}, "thresholds": {"pass": %d, "marginal": %d}, "siteLocal": {"x": 1}}`,
		sc(control), sc(experiment), pass, marginal)
}

func TestConfigs(t *testing.T) {
	srv := newServer(t)
	resp, err := http.Get(srv.URL + "/canaryConfig?application=checkout&configurationAccountName=x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	want := `[{"applications":["checkout"],"id":"checkout","name":"checkout"},{"applications":["checkout"],"id":"signals","name":"signals"}]`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

// An execution is judged at once over its past window; its score is canaryd's, a
// failed one's 0 when a critical metric failed, and the request's thresholds classify
// it as Argo will.
func TestExecution(t *testing.T) {
	srv := newServer(t)
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	start := end.Add(-3 * time.Minute)
	cases := []struct {
		name           string
		canary         string
		pass, marginal int
		score          float64
		classification string
	}{
		{"healthy", "checkout-good", 95, 75, 100, "Pass"},
		{"critical regression", "checkout-bad", 95, 75, 0, "Fail"},
		{"marginal", "checkout-busy", 95, 75, 85, "Marginal"},
		{"the request's thresholds pass it", "checkout-busy", 80, 60, 85, "Pass"},
		{"the request's thresholds fail it", "checkout-busy", 99, 90, 85, "Fail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := call(t, "POST", srv.URL+"/canary/checkout?application=checkout&metricsAccountName=m&configurationAccountName=c&storageAccountName=s",
				execBody("checkout-stable", tc.canary, start, end, tc.pass, tc.marginal))
			id, _ := out["canaryExecutionId"].(string)
			if code != 200 || id == "" {
				t.Fatalf("start: %d %v", code, out)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				code, out = call(t, "GET", srv.URL+"/canary/"+id, "")
				if code != 200 {
					t.Fatalf("poll: %d %v", code, out)
				}
				if out["complete"] == true {
					break
				}
				if out["complete"] != false || out["status"] != "running" {
					t.Fatalf("running: %v", out)
				}
				if time.Now().After(deadline) {
					t.Fatal("not complete after 20s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if out["status"] != "succeeded" || out["canaryConfigId"] != "checkout" || out["canaryExecutionId"] != id {
				t.Errorf("status %v", out)
			}
			jr := out["result"].(map[string]any)["judgeResult"].(map[string]any)
			sc := jr["score"].(map[string]any)
			if sc["score"] != tc.score || sc["classification"] != tc.classification {
				t.Errorf("score %v %v (%v), want %g %s", sc["score"], sc["classification"], sc["classificationReason"], tc.score, tc.classification)
			}
			if n := len(jr["results"].([]any)); n != 3 {
				t.Errorf("%d metric results, want 3", n)
			}
		})
	}
}

// A canary that ends in error (a metric whose query fails) has no score, as a failed
// Kayenta execution: Argo reads that as a measurement error, not as a verdict.
func TestExecutionError(t *testing.T) {
	srv := newServer(t)
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	body := fmt.Sprintf(`{"scopes": {"default": {
		"controlScope": {"scope": "a", "start": %q, "end": %q, "extendedScopeParams": {"signal": "error_rate"}},
		"experimentScope": {"scope": "b", "start": %q, "end": %q, "extendedScopeParams": {"signal": "bogus"}}}},
		"thresholds": {"pass": 95, "marginal": 75}}`,
		end.Add(-time.Minute).Format(time.RFC3339), end.Format(time.RFC3339), end.Add(-time.Minute).Format(time.RFC3339), end.Format(time.RFC3339))
	code, out := call(t, "POST", srv.URL+"/canary/signals", body)
	if code != 200 {
		t.Fatalf("start: %d %v", code, out)
	}
	id := out["canaryExecutionId"].(string)
	deadline := time.Now().Add(20 * time.Second)
	for out["complete"] != true {
		if time.Now().After(deadline) {
			t.Fatal("not complete after 20s")
		}
		time.Sleep(20 * time.Millisecond)
		_, out = call(t, "GET", srv.URL+"/canary/"+id, "")
	}
	if out["status"] != "terminal" || out["result"] != nil {
		t.Errorf("want terminal without a result, got %v", out)
	}
	if msg, _ := out["exception"].(map[string]any)["message"].(string); !strings.Contains(msg, "1 in error") {
		t.Errorf("exception %v, want the metric's error", out["exception"])
	}
}

func TestExecutionBadInput(t *testing.T) {
	srv := newServer(t)
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	start := end.Add(-3 * time.Minute)
	good := execBody("checkout-stable", "checkout-good", start, end, 95, 75)
	cases := []struct {
		name, config, body string
		code               int
		field, msg         string
	}{
		{"unknown config", "nope", good, 404, "configId", `no canary config "nope": the canary configs are canaryd's analyses (GET /canaryConfig)`},
		{"no body", "checkout", "", 400, "", "the body must be a JSON object: Kayenta's CanaryExecutionRequest"},
		{"not JSON", "checkout", "{", 400, "", "the body must be a JSON object: unexpected EOF"},
		{"no scopes", "checkout", `{"thresholds": {"pass": 95, "marginal": 75}}`, 400, "scopes", "canaryd judges one scope per execution, this request has 0"},
		{"two scopes", "checkout", `{"scopes": {"a": {}, "b": {}}}`, 400, "scopes", "canaryd judges one scope per execution, this request has 2"},
		{"no control scope", "checkout", `{"scopes": {"default": {"experimentScope": {"scope": "x"}}}}`, 400, "scopes.default.controlScope", "required"},
		{"empty scope", "checkout", strings.Replace(good, `"checkout-good"`, `""`, 1), 400, "scopes.default.experimentScope.scope", "required"},
		{"scope with a quote", "checkout", strings.Replace(good, `"checkout-good"`, `"x\" or 1"`, 1), 400, "scopes.default.experimentScope.scope", "must not contain quotes or backslashes"},
		{"no start", "checkout", strings.Replace(good, `"start"`, `"begin"`, 1), 400, "scopes.default.controlScope.start", "required: the window to judge"},
		{"bad end", "checkout", strings.Replace(good, end.Format(time.RFC3339), "yesterday", 1), 400, "scopes.default.controlScope.end", `"yesterday" is not an ISO 8601 instant (e.g. 2026-03-01T12:00:00Z)`},
		{"windows differ", "checkout", strings.Replace(good, end.Format(time.RFC3339), end.Add(time.Second).Format(time.RFC3339), 1), 400, "scopes.default.experimentScope",
			"start and end must be the control scope's: canaryd compares both cohorts over the same window"},
		{"end before start", "checkout", execBody("checkout-stable", "checkout-good", end, start, 95, 75), 400, "scopes.default.experimentScope.end", "-3m0s is less than the analysis' step (2s) after start"},
		{"marginal above pass", "checkout", execBody("checkout-stable", "checkout-good", start, end, 70, 80), 400, "thresholds.marginal", "must be within 0..pass (70)"},
		{"pass not a number", "checkout", strings.Replace(good, `"pass": 95`, `"pass": "high"`, 1), 400, "thresholds.pass", "must be a number, not a JSON string"},
		{"scope not an object", "checkout", `{"scopes": {"default": {"controlScope": 1}}}`, 400, "scopes.controlScope", "must be an object, not a JSON number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := call(t, "POST", srv.URL+"/canary/"+tc.config, tc.body)
			if code != tc.code || out["field"] != nilIfEmpty(tc.field) || out["error"] != tc.msg {
				t.Errorf("got %d %v, want %d %s: %s", code, out, tc.code, tc.field, tc.msg)
			}
		})
	}
	if code, out := call(t, "GET", srv.URL+"/canary/nosuchexecution", ""); code != 404 || out["field"] != "executionId" {
		t.Errorf("unknown execution: %d %v", code, out)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
