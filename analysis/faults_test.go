package analysis_test

import (
	"context"
	"fmt"
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
)

const faultConfig = `
scheduler: {max_consecutive_errors: 3}
providers:
  prom: {type: prometheus, address: %q, timeout: 300ms, retries: 1}
analyses:
  faults:
    provider: prom
    interval: 1m
    step: 15s
    lifetime: 10m
    warmup: 1m
    metrics:
      - name: error-rate
        query: 'rate(errors{track="{{ .Cohort.track }}"}[1m])'
        judge: {type: mannwhitney, critical: true}
`

// TestProviderFaults runs a canary against a real Prometheus provider whose server
// misbehaves in each way a backend can: every interval records the metric as error with
// what went wrong, and the canary ends `error` after max_consecutive_errors intervals —
// never a silent pass.
func TestProviderFaults(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		reason  string
	}{
		{"down", nil, "connection refused"},
		{"slow past its timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, "deadline exceeded"},
		{"5xx", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream overloaded", http.StatusServiceUnavailable)
		}, "503"},
		{"garbage", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>login required</html>")
		}, "prometheus"},
		{"wrong shape", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":"not a list"}}`)
		}, "prometheus"},
		{"broken PromQL", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:6: parse error: unexpected right parenthesis ')'"}`)
		}, "parse error: unexpected right parenthesis"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := "http://127.0.0.1:1"
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				addr = srv.URL
			}
			cfg, err := config.Parse([]byte(fmt.Sprintf(faultConfig, addr)), testKinds())
			if err != nil {
				t.Fatal(err)
			}
			prov, err := cfg.Providers["prom"].Build(zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			st, err := boltstore.Open(filepath.Join(t.TempDir(), "c.db"), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			clock := newFakeClock()
			sched := analysis.NewScheduler(analysis.Options{
				Store: st, Clock: clock, Logger: zaptest.NewLogger(t), Metrics: analysis.NewMetrics(reg),
				MaxConsecutiveErrors: 3, QueryTimeout: time.Second,
			})
			sched.SetEnv(&analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{"prom": prov}})
			if err := sched.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sched.Stop(context.Background()); st.Close() })
			c, err := sched.Register(context.Background(), analysis.Registration{
				Name: "web", Analysis: "faults",
				Baseline: map[string]string{"track": "stable"}, Canary: map[string]string{"track": "canary"},
			})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			var d *analysis.Detail
			for {
				if d, err = sched.Get(context.Background(), c.ID); err != nil {
					t.Fatal(err)
				}
				if d.Status.Final() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still %s after 30 s: %d intervals", d.Status, len(d.Results))
				}
				clock.Advance(10 * time.Second)
				time.Sleep(20 * time.Millisecond)
			}
			if d.Status != analysis.StatusError || len(d.Results) != 3 || !strings.Contains(d.Reason, "3 intervals in a row") {
				t.Fatalf("ended %s after %d intervals: %s", d.Status, len(d.Results), d.Reason)
			}
			for _, r := range d.Results {
				m := r.Metrics[0]
				if m.Classification != "error" || !strings.Contains(m.Reason, tc.reason) || r.Score.Verdict == "pass" {
					t.Errorf("interval %d: %s (%s), verdict %s; want error naming %q", r.Index, m.Classification, m.Reason, r.Score.Verdict, tc.reason)
				}
			}
			if got := series(t, reg, "canaryd_provider_query_errors_total")["provider=prom"]; got < 3 {
				t.Errorf("canaryd_provider_query_errors_total = %v, want >= 3", got)
			}
		})
	}
}
