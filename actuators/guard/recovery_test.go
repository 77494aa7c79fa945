package guard

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
)

// watchEnds stores the recovery outcome the scheduler's watch reached.
func (e *env) watchEnds(c *analysis.Canary, outcome analysis.RecoveryOutcome, reason string, rbs []analysis.RollbackAction) *analysis.Canary {
	e.t.Helper()
	now := e.clock.Now()
	c, err := e.st.Update(e.ctx(), c.ID, func(c *analysis.Canary) ([]analysis.Action, error) {
		c.Recovery = &analysis.Recovery{Outcome: outcome, Reason: reason, Within: 5 * time.Minute, Metrics: []string{"errors"},
			RolledBackAt: &now, DecidedAt: &now, Rollbacks: rbs}
		return nil, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestFailActions(t *testing.T) {
	cases := []struct {
		name     string
		codes    []int
		rollback string
		err      string
	}{
		{name: "the rollback succeeded", rollback: "succeeded"},
		{name: "the rollback failed", codes: []int{http.StatusForbidden}, rollback: "failed", err: "403 Forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.rc.queue("/rollback/web", tc.codes...)
			c, act := e.end(canaryOpts{analysis: "watched", app: "web", status: analysis.StatusFail})
			if done, _, err := e.g.FailActions(e.ctx(), c); done || err != nil {
				t.Fatalf("done %v (%v) before the canary is planned", done, err)
			}
			e.g.OnVerdict(context.Background(), c, act)
			e.idle()
			done, acts, err := e.g.FailActions(e.ctx(), c)
			if !done || err != nil || len(acts) != 2 {
				t.Fatalf("done %v, %d actions, %v", done, len(acts), err)
			}
			by := map[string]analysis.RollbackAction{}
			for _, a := range acts {
				by[a.Actuator] = a
			}
			rb, n := by["rollback"], by["notify"]
			if rb.State != tc.rollback || rb.Notification || rb.DoneAt == nil || !strings.Contains(rb.Error, tc.err) || rb.Failed() != (tc.rollback == "failed") {
				t.Errorf("rollback %+v", rb)
			}
			if n.State != "succeeded" || !n.Notification || n.Failed() {
				t.Errorf("notify %+v", n)
			}
		})
	}
}

func TestEscalationFiresOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, act := e.end(canaryOpts{analysis: "watched", app: "web", status: analysis.StatusFail})
	e.g.OnVerdict(context.Background(), c, act)
	e.idle()
	c = e.watchEnds(c, analysis.RecoveryNotRecovered, "the rollback failed: rollback failed: exit status 1: permission denied",
		[]analysis.RollbackAction{{Actuator: "rollback", State: "failed", Error: "exit status 1: permission denied"}})
	e.g.OnRecovery(context.Background(), c)
	e.g.OnRecovery(context.Background(), c) // once, ever
	e.idle()
	if _, err := e.g.Recover(e.ctx()); err != nil {
		t.Fatal(err)
	}
	e.idle()
	got := e.rc.deliveries("/escalate")
	if len(got) != 1 || got[0].key != c.ID+"/on_not_recovered/escalate" {
		t.Fatalf("escalations: %+v", got)
	}
	var body struct {
		actuators.Event
	}
	if err := json.Unmarshal([]byte(got[0].body), &body); err != nil {
		t.Fatal(err)
	}
	if body.Trigger != "on_not_recovered" || body.Recovery.Outcome != "not_recovered" ||
		len(body.Recovery.RollbackErrors) != 1 || body.Recovery.RollbackErrors[0] != "rollback: exit status 1: permission denied" ||
		!strings.Contains(body.Reason, "permission denied") {
		t.Errorf("escalation event: %+v", body.Event)
	}
	es := e.audit(Query{Canary: c.ID, Kind: KindRecovery, Limit: 10})
	if len(es) != 1 || es[0].Outcome != "not_recovered" || es[0].Trigger != "on_not_recovered" || !strings.Contains(es[0].Reason, "permission denied") {
		t.Errorf("recovery audit entries: %+v", es)
	}
	if a := e.actuations(c.ID)["escalate"]; a == nil || a.State != StateSucceeded || a.Trigger != TriggerNotRecovered {
		t.Errorf("escalation action: %+v", a)
	}
}

// TestRecoveredDoesNotEscalate: a recovered watch is audited and fires nothing.
func TestRecoveredDoesNotEscalate(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, act := e.end(canaryOpts{analysis: "watched", app: "web", status: analysis.StatusFail})
	e.g.OnVerdict(context.Background(), c, act)
	e.idle()
	c = e.watchEnds(c, analysis.RecoveryRecovered, "every watched metric is back within tolerance of the pre-canary reference", nil)
	e.g.OnRecovery(context.Background(), c)
	e.idle()
	if got := e.rc.deliveries("/escalate"); len(got) != 0 {
		t.Errorf("escalated a recovered service: %+v", got)
	}
	if es := e.audit(Query{Canary: c.ID, Kind: KindRecovery, Limit: 10}); len(es) != 1 || es[0].Outcome != "recovered" {
		t.Errorf("recovery audit entries: %+v", es)
	}
}

// TestEscalationLostInACrash: the watch's outcome was stored but canaryd died before the
// guard heard of it; the next start's Recover escalates, once.
func TestEscalationLostInACrash(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, act := e.end(canaryOpts{analysis: "watched", app: "web", status: analysis.StatusFail})
	e.g.OnVerdict(context.Background(), c, act)
	e.idle()
	c = e.watchEnds(c, analysis.RecoveryNotRecovered, "still outside tolerance at the end of the watch: errors (canary): …", nil)
	e.close()
	e.open(nil)
	for range 2 {
		if _, err := e.g.Recover(e.ctx()); err != nil {
			t.Fatal(err)
		}
		e.idle()
	}
	if got := e.rc.deliveries("/escalate"); len(got) != 1 {
		t.Errorf("%d escalations after the restart, want 1", len(got))
	}
	if es := e.audit(Query{Canary: c.ID, Kind: KindRecovery, Limit: 10}); len(es) != 1 || es[0].Who != "canaryd (recovered)" {
		t.Errorf("recovery audit entries: %+v", es)
	}
}

// TestTimeToDecide: a verdict that fires at once is decided at the verdict; one held for
// approval when the approval comes.
func TestTimeToDecide(t *testing.T) {
	e := newEnv(t, envOpts{})
	decide := func(a string) (count uint64, sum float64) {
		var d dto.Metric
		if err := e.g.m.TimeToDecide.WithLabelValues(a).(prometheus.Metric).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.Histogram.GetSampleCount(), d.Histogram.GetSampleSum()
	}
	e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	if n, sum := decide("golden"); n != 1 || sum != 1800 {
		t.Errorf("golden: %d observations, sum %v s, want 1 of 1800 s (start to verdict)", n, sum)
	}
	c := e.verdict(canaryOpts{analysis: "gated", app: "web", status: analysis.StatusFail})
	if n, _ := decide("gated"); n != 0 {
		t.Errorf("gated: decided while its rollback waits for approval")
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := e.g.Approve(e.ctx(), c.ID, nil, "real"); err != nil {
		t.Fatal(err)
	}
	if n, sum := decide("gated"); n != 1 || sum != 1920 {
		t.Errorf("gated: %d observations, sum %v s, want 1 of 1920 s (start to approval)", n, sum)
	}
}
