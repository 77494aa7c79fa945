package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/judge"
)

type fakeActuations []*guard.Actuation

func (f fakeActuations) Actuations(context.Context, string) ([]*guard.Actuation, error) {
	return f, nil
}

// TestReportRecovery: a failed canary's page shows its recovery outcome with the loop's
// times, the last check's figures, and the escalation among the actuator actions.
func TestReportRecovery(t *testing.T) {
	_, a := loadAnalysis(t)
	cases := []struct {
		name    string
		rec     analysis.Recovery
		outcome string
		times   []string
		figures []string
	}{
		{name: "recovered", outcome: "recovered",
			rec:   analysis.Recovery{Outcome: analysis.RecoveryRecovered, Reason: "every watched metric is back within tolerance of the pre-canary reference"},
			times: []string{"detected", "decided", "rolled back", "recovered"}, figures: []string{"within"}},
		{name: "not recovered", outcome: "not_recovered",
			rec:   analysis.Recovery{Outcome: analysis.RecoveryNotRecovered, Reason: "still outside tolerance at the end of the watch: error-rate (canary): …"},
			times: []string{"detected", "decided", "rolled back", "not_recovered"}, figures: []string{"outside"}},
		{name: "watching", outcome: "watching", rec: analysis.Recovery{Outcome: analysis.RecoveryWatching},
			times: []string{"detected", "decided", "rolled back", "next check", "watch ends"}, figures: []string{"outside"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := fixtureDetail(a, 30, true, true)
			ended := *d.EndedAt
			rolled, decided, deadline := ended.Add(20*time.Second), ended.Add(80*time.Second), ended.Add(5*time.Minute)
			d.FirstFailAt = &ended
			r := tc.rec
			r.Within, r.Metrics, r.RolledBackAt, r.DecidedAt, r.Deadline, r.NextAt = 5*time.Minute, []string{"error-rate"}, &rolled, &decided, &deadline, decided
			r.Rollbacks = []analysis.RollbackAction{{Actuator: "rollback", State: "succeeded", DoneAt: &rolled}}
			within := tc.outcome == "recovered"
			r.Figures = []analysis.RecoveryFigure{{Metric: "error-rate", Cohort: "canary", RecoveryResult: judge.RecoveryResult{
				Within: within, Reference: 0.01, Current: 0.012, NReference: 20, NCurrent: 4, Reason: "1.2% now vs 1% before the canary"}}}
			d.Recovery = &r
			acts := fakeActuations{
				{Trigger: "on_fail", Actuator: "rollback", Type: "exec", State: guard.StateSucceeded, Attempts: 1, DoneAt: &rolled},
				{Trigger: "on_not_recovered", Actuator: "page-oncall", Type: "exec", State: guard.StateSucceeded, Attempts: 1, DoneAt: &decided},
			}
			h := New(withAnalysis{fakeSource: newFakeSource(d), a: a}, Options{Logger: zaptest.NewLogger(t), Now: now, Actuations: acts})
			res, body := get(t, h, "/canaries/"+d.ID)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			doc := parseHTML(t, body)
			if got := text(byID(doc, "verdict")); got != "fail" {
				t.Errorf("status %q: the watch must not change it", got)
			}
			if got := text(byID(doc, "recovery-outcome")); got != tc.outcome {
				t.Errorf("recovery outcome %q, want %q", got, tc.outcome)
			}
			times := text(byID(doc, "recovery-times"))
			for _, k := range tc.times {
				if !strings.Contains(times, k) {
					t.Errorf("recovery times %q lack %q", times, k)
				}
			}
			if !strings.Contains(times, "(31m22s after the start)") && tc.outcome != "watching" {
				t.Errorf("recovery times %q lack the time since the start", times)
			}
			figs := text(byID(doc, "recovery-figures"))
			for _, f := range append(tc.figures, "1.2%", "1%") {
				if !strings.Contains(figs, f) {
					t.Errorf("figures %q lack %q", figs, f)
				}
			}
			if acts := text(byID(doc, "actuations")); !strings.Contains(acts, "on_not_recovered") || !strings.Contains(acts, "page-oncall") {
				t.Errorf("actuator actions %q lack the escalation", acts)
			}
			if refresh := strings.Contains(body, `http-equiv="refresh"`); refresh != (tc.outcome == "watching") {
				t.Errorf("refresh %v while %s", refresh, tc.outcome)
			}
		})
	}
}
