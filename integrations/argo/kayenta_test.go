package argo

import (
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/metricproviders/kayenta"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Argo's kayenta provider, on examples/argo-rollouts/analysistemplate-kayenta.yaml as it
// is, against canaryd's Kayenta API: Run lists the canary configs, starts an execution
// over the last interval (answered 200 with its id) and Resume polls it until complete;
// the score gives Successful for a healthy canary ReplicaSet, Failed for a regressing one
// (a critical metric: score 0) and Inconclusive for a marginal one.
func TestKayentaProvider(t *testing.T) {
	d := startDaemon(t)
	host := strings.TrimPrefix(d.url, "http://")
	cases := []struct {
		name   string
		canary string
		phase  v1alpha1.AnalysisPhase
		value  string
	}{
		{"healthy", "4f5e6d7c8b", v1alpha1.AnalysisPhaseSuccessful, "100"},
		{"regressing", "7d9f8c6b5a", v1alpha1.AnalysisPhaseFailed, "0"},
		{"marginal", "5c8d7f9b6e", v1alpha1.AnalysisPhaseInconclusive, "85"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			metric := templateMetric(t, "../../examples/argo-rollouts/analysistemplate-kayenta.yaml", map[string]string{
				"service": "checkout", "stable-hash": "6b7c8d9f5a", "canary-hash": tc.canary,
				"canaryd-host": host, "canaryd-token": d.token,
			})
			p := kayenta.NewKayentaProvider(logEntry(), kayenta.NewHttpClient())
			started := metav1.NewTime(time.Now().Add(-10 * time.Minute))
			run := &v1alpha1.AnalysisRun{Status: v1alpha1.AnalysisRunStatus{StartedAt: &started}}
			m := p.Run(run, metric)
			if m.Phase != v1alpha1.AnalysisPhaseRunning || m.Metadata["canaryExecutionId"] == "" {
				t.Fatalf("Run: phase %s, message %q, metadata %v", m.Phase, m.Message, m.Metadata)
			}
			// Argo resumes 15 s later; the window is past, so the first poll may already
			// find it complete.
			deadline := time.Now().Add(30 * time.Second)
			for m.Phase == v1alpha1.AnalysisPhaseRunning {
				if time.Now().After(deadline) {
					t.Fatal("execution not complete after 30s")
				}
				time.Sleep(50 * time.Millisecond)
				m = p.Resume(run, metric, m)
			}
			if m.Phase != tc.phase || m.Value != tc.value {
				t.Errorf("phase %s, value %q (%s), want %s, %q", m.Phase, m.Value, m.Message, tc.phase, tc.value)
			}
			// The execution is a canary of canaryd's API, judged over the last interval
			// (5m) in one go, in the cohorts the scopes named.
			var c map[string]any
			for _, x := range d.canaries(t) {
				if x["id"] == m.Metadata["canaryExecutionId"] {
					c = x
				}
			}
			if c == nil {
				t.Fatalf("canary %s not in the API's list", m.Metadata["canaryExecutionId"])
			}
			if c["lifetime"] != "5m" || c["interval"] != "5m" || c["analysis"] != "argo-golden-signals" {
				t.Errorf("canary %v", c)
			}
			if b := c["baseline"].(map[string]any); b["pod_template_hash"] != "6b7c8d9f5a" {
				t.Errorf("baseline %v", b)
			}
			if v := c["vars"].(map[string]any); v["application"] != "checkout" {
				t.Errorf("vars %v", v)
			}
		})
	}
}

// A canary config Argo names that canaryd does not have is a measurement error with
// Kayenta's message, and nothing is registered.
func TestKayentaProviderUnknownConfig(t *testing.T) {
	d := startDaemon(t)
	metric := templateMetric(t, "../../examples/argo-rollouts/analysistemplate-kayenta.yaml", map[string]string{
		"service": "checkout", "stable-hash": "6b7c8d9f5a", "canary-hash": "4f5e6d7c8b",
		"canaryd-host": strings.TrimPrefix(d.url, "http://"), "canaryd-token": d.token,
	})
	metric.Provider.Kayenta.CanaryConfigName = "nope"
	p := kayenta.NewKayentaProvider(logEntry(), kayenta.NewHttpClient())
	m := p.Run(&v1alpha1.AnalysisRun{}, metric)
	if m.Phase != v1alpha1.AnalysisPhaseError || m.Message != "Canary config not found" {
		t.Errorf("phase %s, message %q", m.Phase, m.Message)
	}
	// Without the token, canaryd refuses the lookup (401): Argo reports the status.
	metric.Provider.Kayenta.Address = d.url
	if m := p.Run(&v1alpha1.AnalysisRun{}, metric); m.Phase != v1alpha1.AnalysisPhaseError || m.Message != "Invalid Response: HTTP 401" {
		t.Errorf("no token: phase %s, message %q", m.Phase, m.Message)
	}
	if n := len(d.canaries(t)); n != 0 {
		t.Errorf("%d canaries registered", n)
	}
}
