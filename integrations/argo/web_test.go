package argo

import (
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/metricproviders/webmetric"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
)

// Argo's web provider, on examples/argo-rollouts/analysistemplate-web.yaml as it is,
// against canaryd's API: the first measurement registers the canary (201, "running":
// Inconclusive, which the template tolerates), every later one sends the same body with
// the same key and reads the canary back (200) until its verdict: Successful for a
// healthy canary ReplicaSet, Failed for a regressing one, Inconclusive for a marginal
// one. Whatever the number of measurements, there is one canary per key.
func TestWebProvider(t *testing.T) {
	d := startDaemon(t)
	cases := []struct {
		name   string
		canary string
		phase  v1alpha1.AnalysisPhase
		value  string
	}{
		{"healthy", "4f5e6d7c8b", v1alpha1.AnalysisPhaseSuccessful, `"pass"`},
		{"regressing", "7d9f8c6b5a", v1alpha1.AnalysisPhaseFailed, `"fail"`},
		{"marginal", "5c8d7f9b6e", v1alpha1.AnalysisPhaseInconclusive, `"marginal"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			metric := templateMetric(t, "../../examples/argo-rollouts/analysistemplate-web.yaml", map[string]string{
				"rollout": "checkout", "service": "checkout", "stable-hash": "6b7c8d9f5a", "canary-hash": tc.canary,
				"canaryd-url": d.url, "canaryd-token": d.token,
			})
			client, err := webmetric.NewWebMetricHttpClient(metric)
			if err != nil {
				t.Fatal(err)
			}
			parser, err := webmetric.NewWebMetricJsonParser(metric)
			if err != nil {
				t.Fatal(err)
			}
			p := webmetric.NewWebMetricProvider(logEntry(), client, parser)
			run := &v1alpha1.AnalysisRun{}
			m := p.Run(run, metric)
			if m.Phase != v1alpha1.AnalysisPhaseInconclusive || m.Value != `"running"` {
				t.Fatalf("first measurement: phase %s, value %s (%s), want Inconclusive, \"running\"", m.Phase, m.Value, m.Message)
			}
			// The analysis' lifetime is 10s; Argo measures every interval (30s in the
			// template), here every 250ms, as often as a retrying controller might.
			measurements := 1
			deadline := time.Now().Add(40 * time.Second)
			for m.Phase == v1alpha1.AnalysisPhaseInconclusive && m.Value == `"running"` {
				if time.Now().After(deadline) {
					t.Fatal("still running after 40s")
				}
				time.Sleep(250 * time.Millisecond)
				m = p.Run(run, metric)
				measurements++
			}
			if m.Phase != tc.phase || m.Value != tc.value {
				t.Errorf("after %d measurements: phase %s, value %s (%s), want %s, %s", measurements, m.Phase, m.Value, m.Message, tc.phase, tc.value)
			}
			// Once ended, a measurement reads the same verdict again.
			if again := p.Run(run, metric); again.Phase != tc.phase || again.Value != tc.value {
				t.Errorf("after the end: phase %s, value %s (%s)", again.Phase, again.Value, again.Message)
			}
			n := 0
			for _, c := range d.canaries(t) {
				if c["key"] == "checkout-"+tc.canary {
					n++
					if c["name"] != "checkout "+tc.canary || c["analysis"] != "argo-golden-signals" {
						t.Errorf("canary %v", c)
					}
				}
			}
			if n != 1 || measurements < 3 {
				t.Errorf("%d canaries with key checkout-%s after %d measurements, want 1", n, tc.canary, measurements)
			}
		})
	}
}
