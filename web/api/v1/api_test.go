package v1

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/boltstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

type constProvider struct{}

func (constProvider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	return metrics.Series{}, nil
}

const apiConfig = `
providers:
  p: {type: prometheus, address: "http://127.0.0.1:1"}
analyses:
  golden:
    provider: p
    interval: 1m
    lifetime: 30m
    metrics:
      - name: errors
        query: 'errors{app="{{ .Vars.app }}",track="{{ .Cohort.track }}"}'
  by-build:
    provider: p
    interval: 1m
    lifetime: 30m
    metrics:
      - name: latency
        query: 'latency{track="{{ .Cohort.track }}",build="{{ .Cohort.build }}"}'
      - name: errors
        query: 'errors{track="{{ .Cohort.track }}"}'
`

func newAPI(t testing.TB) (http.Handler, *analysis.Scheduler) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "c.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return newAPIOn(t, st)
}

// newAPIOn is newAPI on a given store.
func newAPIOn(t testing.TB, st analysis.Store) (http.Handler, *analysis.Scheduler) {
	t.Helper()
	cfg, err := config.Parse([]byte(apiConfig), testKinds())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	// A fuzz target must not log through f, so fuzzing runs quiet.
	log := zap.NewNop()
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt)
	}
	sched := analysis.NewScheduler(analysis.Options{Store: st, Logger: log, Metrics: analysis.NewMetrics(reg), Limits: analysis.LimitsOf(cfg.Server)})
	sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"p": constProvider{}}})
	if err := sched.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Reader: sched, Registrar: sched, Operator: sched, Gatherer: reg, Logger: log,
		Reload: func(context.Context) error { return nil }})
	t.Cleanup(func() {
		sched.Stop(context.Background())
		st.Close()
	})
	return h, sched
}

func do(t testing.TB, srv http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, out
}

const goodBody = `{"name":"web v2","analysis":"golden","baseline":{"track":"baseline"},"canary":{"track":"canary"},"vars":{"app":"web"},"lifetime":"10m","interval":"2m"}`

func TestRegisterBadInput(t *testing.T) {
	srv, _ := newAPI(t)
	cases := []struct {
		name, body string
		code       int
		field      string
	}{
		{"unknown field", `{"name":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":"w"},"lifetme":"10m"}`, 400, "lifetme"},
		{"wrong type", `{"name":"x","analysis":"golden","lifetime":600}`, 400, "lifetime"},
		{"wrong type in a map", `{"name":"x","analysis":"golden","baseline":{"track":1}}`, 400, "baseline.track"},
		{"non-string var names its key", `{"name":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":3,"env":"prod"}}`, 400, "vars.app"},
		{"unknown analysis", `{"name":"x","analysis":"nope"}`, 400, "analysis"},
		{"missing cohort variable", `{"name":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"trak":"c"},"vars":{"app":"w"}}`, 400, "canary.track"},
		{"missing shared variable", `{"name":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"}}`, 400, "vars.app"},
		{"lifetime shorter than interval", `{"name":"x","analysis":"golden","baseline":{"track":"b"},"canary":{"track":"c"},"vars":{"app":"w"},"lifetime":"1m","interval":"2m"}`, 400, "lifetime"},
		{"bad duration", `{"name":"x","analysis":"golden","interval":"soon"}`, 400, "interval"},
		{"zero duration", `{"name":"x","analysis":"golden","interval":"0s"}`, 400, "interval"},
		{"bad start", `{"name":"x","analysis":"golden","start":"yesterday"}`, 400, "start"},
		{"two objects", goodBody + goodBody, 400, ""},
		{"not an object", `[1]`, 400, ""},
		{"empty", ``, 400, ""},
		{"malformed", `{"name":`, 400, ""},
		{"too large", `{"name":"` + strings.Repeat("x", DefaultMaxBody) + `"}`, 413, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", tc.body)
			if code != tc.code {
				t.Fatalf("code %d, want %d (%v)", code, tc.code, out)
			}
			if got, _ := out["field"].(string); got != tc.field {
				t.Errorf("field %q, want %q (%v)", got, tc.field, out["error"])
			}
			if msg, _ := out["error"].(string); msg == "" {
				t.Errorf("no error message: %v", out)
			}
		})
	}
	code, out := do(t, srv, "GET", "/api/v1/canaries", "")
	if code != 200 || len(out["canaries"].([]any)) != 0 {
		t.Errorf("bad requests stored something: %v", out)
	}
}

// A registration whose cohorts render the same query for a metric is refused (issue 13,
// finding 2): such a canary is compared with itself and passes whatever it does.
func TestRegisterIdenticalQueries(t *testing.T) {
	srv, _ := newAPI(t)
	reg := func(analysis, baseline, canary string) string {
		return `{"name":"web v2","analysis":"` + analysis + `","baseline":` + baseline + `,"canary":` + canary + `,"vars":{"app":"web"}}`
	}
	cases := []struct {
		name, body string
		code       int
		errorHas   string
	}{
		{"a variable no query uses", reg("golden", `{"track":"stable"}`, `{"track":"stable","build":"v2"}`), 400,
			"metric errors renders the same query for both cohorts, so the canary would be compared with itself: the cohorts differ only in build, which its query does not use"},
		{"one metric of two identical", reg("by-build", `{"track":"stable","build":"v1"}`, `{"track":"stable","build":"v2"}`), 400,
			"metric errors renders the same query for both cohorts"},
		{"a shared variable moved into one cohort", reg("golden", `{"track":"stable","app":"web"}`, `{"track":"stable"}`), 400,
			"the cohorts differ only in app, which its query does not use"},
		{"every metric differs", reg("by-build", `{"track":"stable","build":"v1"}`, `{"track":"canary","build":"v2"}`), 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, srv, "POST", "/api/v1/canaries", tc.body)
			if code != tc.code {
				t.Fatalf("code %d, want %d (%v)", code, tc.code, out)
			}
			if tc.code != 400 {
				return
			}
			if f, _ := out["field"].(string); f != "canary" {
				t.Errorf("field %q, want canary", f)
			}
			if msg, _ := out["error"].(string); !strings.Contains(msg, tc.errorHas) {
				t.Errorf("error %q lacks %q", msg, tc.errorHas)
			}
		})
	}
	code, out := do(t, srv, "GET", "/api/v1/canaries", "")
	if code != 200 || len(out["canaries"].([]any)) != 1 {
		t.Errorf("want only the valid registration stored: %v", out)
	}
}

func TestLifecycleThroughAPI(t *testing.T) {
	srv, _ := newAPI(t)
	code, c := do(t, srv, "POST", "/api/v1/canaries", goodBody)
	if code != 201 || c["status"] != "running" || c["lifetime"] != "10m" || c["interval"] != "2m" || c["interval_count"] != 5.0 {
		t.Fatalf("register: %d %v", code, c)
	}
	id := c["id"].(string)
	if len(id) != 16 {
		t.Errorf("id %q", id)
	}
	code, got := do(t, srv, "GET", "/api/v1/canaries/"+id, "")
	if code != 200 || got["name"] != "web v2" || got["next_interval_at"] == nil || got["intervals_judged"] != 0.0 {
		t.Errorf("get: %d %v", code, got)
	}
	// The detail has each metric's query as rendered for both cohorts (issue 19 item 13).
	wantQ := []any{map[string]any{"metric": "errors", "role": "query",
		"baseline": `errors{app="web",track="baseline"}`, "canary": `errors{app="web",track="canary"}`}}
	if !reflect.DeepEqual(got["queries"], wantQ) {
		t.Errorf("queries %v, want %v", got["queries"], wantQ)
	}
	code, list := do(t, srv, "GET", "/api/v1/canaries?status=running", "")
	if code != 200 || len(list["canaries"].([]any)) != 1 {
		t.Errorf("list running: %d %v", code, list)
	}
	if q := list["canaries"].([]any)[0].(map[string]any)["queries"]; q != nil {
		t.Errorf("the list carries queries: %v", q)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		field              string
	}{
		{"GET", "/api/v1/canaries?status=done", "", 400, "status"},
		{"GET", "/api/v1/canaries?sort=id", "", 400, "sort"},
		{"GET", "/api/v1/canaries/nosuchcanary", "", 404, ""},
		{"GET", "/api/v1/canaries/NOT_AN_ID", "", 404, ""},
		{"POST", "/api/v1/canaries/" + id + "/abort?actuate=maybe", "", 400, "actuate"},
		{"POST", "/api/v1/canaries/" + id + "/abort", `{"why":"x"}`, 400, "why"},
		{"POST", "/api/v1/canaries/" + id + "/abort?actuate=false", `{"reason":"bad deploy"}`, 200, ""},
		{"POST", "/api/v1/canaries/" + id + "/abort", "", 409, ""},
		{"POST", "/api/v1/canaries/" + id + "/promote", "", 409, ""},
		{"POST", "/api/v1/canaries/nosuchcanary/promote", "", 404, ""},
	} {
		code, out := do(t, srv, tc.method, tc.path, tc.body)
		if code != tc.code {
			t.Errorf("%s %s: %d, want %d (%v)", tc.method, tc.path, code, tc.code, out)
		}
		if f, _ := out["field"].(string); f != tc.field {
			t.Errorf("%s %s: field %q, want %q", tc.method, tc.path, f, tc.field)
		}
	}
	_, got = do(t, srv, "GET", "/api/v1/canaries/"+id, "")
	acts := got["actions"].([]any)
	a := acts[0].(map[string]any)
	if got["status"] != "aborted" || got["reason"] != "bad deploy" || len(acts) != 1 || a["kind"] != "abort" || a["actuate"] != false {
		t.Errorf("after abort: %v", got)
	}

	_, c2 := do(t, srv, "POST", "/api/v1/canaries", goodBody)
	code, p := do(t, srv, "POST", "/api/v1/canaries/"+c2["id"].(string)+"/promote", "")
	if code != 200 || p["status"] != "pass" {
		t.Errorf("promote: %d %v", code, p)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	srv, _ := newAPI(t)
	for _, tc := range []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/readyz", 200, "ready"},
		{"GET", "/metrics", 200, `canaryd_canaries{status="running"} 0`},
		{"POST", "/-/reload", 200, "reloaded"},
		{"GET", "/-/reload", 405, ""},
		{"DELETE", "/api/v1/canaries/abc", 405, ""},
		{"GET", "/api/v2/canaries", 404, "not found"},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		resp := rec.Result()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.contains) {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, resp.StatusCode, b)
		}
	}
}

// FuzzRegister: no body makes the API answer 5xx or store a canary it then cannot show,
// and every registration it accepts holds the invariants of issue 13: no stored text
// with a control character (C0, C1, U+2028/2029) or invalid UTF-8, every query renders
// and differs between the cohorts, and every value a query uses passes its provider's
// charset (analysis.ValueChecker).
func FuzzRegister(f *testing.F) {
	f.Add(goodBody)
	f.Add(`{"name":"x","analysis":"golden","baseline":{"track":1}}`)
	f.Add(`{"name":"x","analysis":"golden","lifetime":"1d"}`)
	f.Add(`{"name":"x","analysis":"on-datadog","baseline":{"track":"stable"},"canary":{"track":"v2} OR sum:other{service:x"},"vars":{"app":"*,!env:prod"}}`)
	f.Add(`{"name":"x","analysis":"on-datadog","baseline":{"track":"stable"},"canary":{"track":"v2"},"vars":{"app":"web","note":"a b, c"}}`)
	f.Add(`{"name":"x","analysis":"on-synthetic","baseline":{"track":"stable"},"canary":{"track":"canary seed=1"},"vars":{"app":"web"}}`)
	f.Add(`{"name":"x","analysis":"on-prom","baseline":{"track":"stable"},"canary":{"track":"canary"},"vars":{"app":"web"},"interval":"1ms","start":"0001-01-01T00:00:00Z"}`)
	f.Add(`{"name":"x","analysis":"golden","baseline":{"track":"stable"},"canary":{"track":"stable","build":"v2"},"vars":{"app":"web"}}`)
	// The scheduler is not started and the store is in memory: a disk sync per
	// registration would slow the fuzzer's workers until the coordinator gives up on them
	// ("context deadline exceeded").
	srv, sched := newProvidersAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		code, out := do(t, srv, "POST", "/api/v1/canaries", body)
		if code >= 500 {
			t.Fatalf("%d for %q: %v", code, body, out)
		}
		if code != 201 {
			return
		}
		id := out["id"].(string)
		if c, _ := do(t, srv, "GET", "/api/v1/canaries/"+id, ""); c != 200 {
			t.Fatalf("registered canary not readable: %d", c)
		}
		got, err := sched.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		d := got.Canary
		texts := map[string]string{"name": d.Name}
		for field, m := range map[string]map[string]string{"baseline": d.Baseline, "canary": d.Canary, "vars": d.Vars} {
			for k, v := range m {
				texts[field+" key "+k], texts[field+"."+k] = k, v
			}
		}
		for field, v := range texts {
			if i, what := analysis.BadText(v); i >= 0 {
				t.Fatalf("%s stored %q with %s at byte %d (body %q)", field, v, what, i, body)
			}
		}
		env := sched.Env()
		a := env.Config.Analyses[d.Analysis]
		var queries []string
		for _, m := range a.Metrics {
			var pair [2]string
			for i, cohort := range []map[string]string{d.Baseline, d.Canary} {
				q, err := m.Template.Render(metrics.TemplateData{Cohort: cohort, Vars: d.Vars})
				if err != nil {
					t.Fatalf("stored canary's query %s does not render: %v", m.Name, err)
				}
				pair[i] = q
				queries = append(queries, q)
			}
			if pair[0] == pair[1] {
				t.Fatalf("metric %s renders %q for both cohorts: the canary is compared with itself (body %q)", m.Name, pair[0], body)
			}
		}
		vc, ok := env.Providers[a.Provider].(analysis.ValueChecker)
		if !ok {
			return
		}
		for field, v := range texts {
			if strings.Contains(field, " key ") || field == "name" || v == "" {
				continue
			}
			for _, q := range queries {
				if strings.Contains(q, v) {
					if err := vc.CheckValue(v); err != nil {
						t.Fatalf("%s = %q is in query %q but fails the %s provider's charset: %v", field, v, q, a.Provider, err)
					}
				}
			}
		}
	})
}
