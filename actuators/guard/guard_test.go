package guard

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/internal/identity"
)

// A failed verdict fires each on_fail actuator once, with the idempotency key of
// (canary, trigger, actuator), the event as the template data, and everything on record.
func TestFailFiresOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	e.g.OnVerdict(context.Background(), c, act)
	e.g.OnVerdict(context.Background(), c, act) // a second call plans nothing
	e.idle()

	rb := e.rc.deliveries("/rollback/")
	if len(rb) != 1 || rb[0].path != "/rollback/web" || rb[0].key != c.ID+"/on_fail/rollback" {
		t.Fatalf("rollback deliveries: %+v", rb)
	}
	var body struct {
		Version string `json:"version"`
		actuators.Event
	}
	if err := json.Unmarshal([]byte(rb[0].body), &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != c.ID || body.Trigger != "on_fail" || body.Cause != "critical" || body.Service != "web" || body.Kind != "verdict" ||
		body.Link != "http://canaryd.test/api/v1/canaries/"+c.ID || len(body.Failing) != 2 ||
		body.Failing[0].Name != "errors" || !body.Failing[0].Critical || body.Failing[1].Name != "saturation" {
		t.Errorf("event: %+v", body.Event)
	}
	pd := e.rc.deliveries("/v2/enqueue")
	if len(pd) != 1 || !strings.Contains(pd[0].body, `"event_action":"trigger"`) || !strings.Contains(pd[0].body, `"dedup_key":"`+c.ID+`"`) {
		t.Errorf("pagerduty: %+v", pd)
	}
	acts := e.actuations(c.ID)
	for _, name := range []string{"rollback", "notify", "page"} {
		a := acts[name]
		if a == nil || a.State != StateSucceeded || a.Attempts != 1 || a.Request == nil || a.DoneAt == nil {
			t.Errorf("%s: %+v", name, a)
		}
	}
	if got := acts["rollback"].Request.Target; got != "POST "+e.rc.srv.URL+"/rollback/web" {
		t.Errorf("rendered target %q", got)
	}
	// The audit log: the verdict, each intent, each outcome.
	es := e.audit(Query{Canary: c.ID, Limit: 100})
	var kinds []string
	for i := len(es) - 1; i >= 0; i-- {
		kinds = append(kinds, string(es[i].Kind)+":"+es[i].Actuator+":"+es[i].Outcome)
	}
	want := "verdict::fail action:rollback:pending action:notify:pending action:page:pending"
	if got := strings.Join(kinds[:4], " "); got != want {
		t.Errorf("audit head %q, want %q", got, want)
	}
	if len(es) != 7 || es[0].Outcome != "succeeded" || es[0].Who != "canaryd" || es[len(es)-1].Who != "scheduler" {
		t.Errorf("audit: %v", kinds)
	}
	if v := value(t, e.g.m.Actions.WithLabelValues("rollback", "webhook", "succeeded")); v != 1 {
		t.Errorf("actions_total = %v", v)
	}
	if v := value(t, e.g.m.VerdictToAction.WithLabelValues("rollback", "succeeded").(prometheus.Metric)); v != 1 {
		t.Errorf("verdict_to_action count = %v", v)
	}
}

// OnVerdict returns while the receiver is still holding the request: the scheduler's
// worker never waits for an actuator.
func TestOnVerdictDoesNotBlock(t *testing.T) {
	e := newEnv(t, envOpts{})
	hold, held := make(chan struct{}), make(chan struct{})
	e.rc.mu.Lock()
	e.rc.hold, e.rc.held = hold, held
	e.rc.mu.Unlock()
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	returned := make(chan struct{})
	go func() { e.g.OnVerdict(context.Background(), c, act); close(returned) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("OnVerdict blocked")
	}
	select {
	case <-held: // the action is in flight while OnVerdict has returned
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the receiver")
	}
	close(hold)
	e.idle()
}

func TestRetries(t *testing.T) {
	cases := []struct {
		name     string
		codes    []int
		state    State
		attempts int
	}{
		{"5xx then ok", []int{503, 502}, StateSucceeded, 3},
		{"5xx until out of attempts", []int{500, 500, 500}, StateFailed, 3},
		{"4xx gives up at once", []int{400}, StateFailed, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.rc.queue("/rollback/web", tc.codes...)
			c := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
			a := e.actuations(c.ID)["rollback"]
			if a.State != tc.state || a.Attempts != tc.attempts || len(e.rc.deliveries("/rollback/")) != tc.attempts {
				t.Fatalf("%+v", a)
			}
			for _, d := range e.rc.deliveries("/rollback/") {
				if d.key != c.ID+"/on_fail/rollback" {
					t.Errorf("attempt with key %q", d.key)
				}
			}
			retrying := e.audit(Query{Canary: c.ID, Actuator: "rollback", Outcome: "retrying"})
			if len(retrying) != min(tc.attempts-1, len(tc.codes)) {
				t.Errorf("retrying entries: %d", len(retrying))
			}
		})
	}
}

// The breaker: at most 3 rollbacks of one service per hour; the 4th is refused,
// recorded and counted, and the limit frees up as the window slides.
func TestBreakerRefusesFourth(t *testing.T) {
	e := newEnv(t, envOpts{})
	var ids []string
	for range 4 {
		ids = append(ids, e.verdict(canaryOpts{app: "web", status: analysis.StatusFail}).ID)
		e.clock.Advance(10 * time.Minute)
	}
	if n := len(e.rc.deliveries("/rollback/web")); n != 3 {
		t.Fatalf("rollbacks fired: %d, want 3", n)
	}
	fourth := e.actuations(ids[3])
	if fourth["rollback"].State != StateRefused || !strings.Contains(fourth["rollback"].Error, "circuit breaker: rollback already acted 3 times on service \"web\" in the last 1h0m0s") {
		t.Errorf("4th: %+v", fourth["rollback"])
	}
	// Notifications have no breaker: the 4th canary was still announced.
	if fourth["notify"].State != StateSucceeded || len(e.rc.deliveries("/notify")) != 4 {
		t.Errorf("notify: %+v", fourth["notify"])
	}
	if v := value(t, e.g.m.BreakerRefusals.WithLabelValues("rollback")); v != 1 {
		t.Errorf("breaker refusals = %v", v)
	}
	if es := e.audit(Query{Outcome: "refused"}); len(es) != 1 || es[0].Canary != ids[3] {
		t.Errorf("audit: %+v", es)
	}
	// Another service has its own count.
	e.verdict(canaryOpts{app: "api", status: analysis.StatusFail})
	if n := len(e.rc.deliveries("/rollback/api")); n != 1 {
		t.Errorf("api rollbacks: %d", n)
	}
	// 61 minutes after the first rollback, one slot is free again.
	e.clock.Advance(21 * time.Minute)
	c := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	if a := e.actuations(c.ID)["rollback"]; a.State != StateSucceeded {
		t.Errorf("after the window: %+v", a)
	}
}

// The cooldown: after an action on a service, other canaries' actions on it are
// suppressed for the cooldown; notifications still go out.
func TestCooldown(t *testing.T) {
	e := newEnv(t, envOpts{extra: "  breaker: {max: 0}\n  cooldown: 15m"})
	first := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	e.clock.Advance(5 * time.Minute)
	second := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	other := e.verdict(canaryOpts{app: "api", status: analysis.StatusFail})
	if a := e.actuations(first.ID)["rollback"]; a.State != StateSucceeded {
		t.Errorf("first: %+v", a)
	}
	s := e.actuations(second.ID)
	if s["rollback"].State != StateSuppressed || !strings.Contains(s["rollback"].Error, `cooldown: service "web" had an action (rollback, canary `+first.ID+`) 5m0s ago`) {
		t.Errorf("second: %+v", s["rollback"])
	}
	if s["notify"].State != StateSucceeded || s["page"].State != StateSucceeded {
		t.Errorf("notifications during the cooldown: %+v %+v", s["notify"], s["page"])
	}
	if a := e.actuations(other.ID)["rollback"]; a.State != StateSucceeded {
		t.Errorf("other service: %+v", a)
	}
	if v := value(t, e.g.m.CooldownSuppressions.WithLabelValues("rollback")); v != 1 {
		t.Errorf("suppressions = %v", v)
	}
	e.clock.Advance(11 * time.Minute)
	if a := e.actuations(e.verdict(canaryOpts{app: "web", status: analysis.StatusFail}).ID)["rollback"]; a.State != StateSucceeded {
		t.Errorf("after the cooldown: %+v", a)
	}
}

// Dry runs, per canary and global, fire nothing and record what would have been sent.
func TestDryRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		extra  string
		dryRun bool
	}{
		{"canary", "", true},
		{"global", "  dry_run: true", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{extra: tc.extra})
			c := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail, dryRun: tc.dryRun})
			if n := len(e.rc.deliveries("/")); n != 0 {
				t.Fatalf("dry run sent %d requests", n)
			}
			acts := e.actuations(c.ID)
			rb := acts["rollback"]
			if rb.State != StateDryRun || rb.Request == nil || rb.Request.Target != "POST "+e.rc.srv.URL+"/rollback/web" || !strings.Contains(rb.Request.Body, `"dry_run":true`) {
				t.Errorf("rollback: %+v", rb)
			}
			if pd := acts["page"]; pd.State != StateDryRun || !strings.Contains(pd.Request.Body, `"routing_key":"<secret>"`) {
				t.Errorf("page: %+v", pd.Request)
			}
			es := e.audit(Query{Canary: c.ID, Outcome: "dry_run"})
			if len(es) != 3 || es[0].Request == nil || es[0].Reason != "dry run: would have fired" {
				t.Errorf("audit: %+v", es)
			}
			if v := value(t, e.g.m.Actions.WithLabelValues("rollback", "webhook", "dry_run")); v != 1 {
				t.Errorf("dry_run counted %v", v)
			}
		})
	}
}

func TestAbortWithoutActuating(t *testing.T) {
	e := newEnv(t, envOpts{})
	no := false
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusAborted, kind: "abort", actuate: &no})
	e.g.OnVerdict(identity.With(context.Background(), Actor{Name: "api:alice", Remote: "127.0.0.1:5"}), c, act)
	e.idle()
	if n := len(e.rc.deliveries("/")); n != 0 {
		t.Fatalf("sent %d", n)
	}
	if a := e.actuations(c.ID)["rollback"]; a.State != StateSkipped {
		t.Errorf("%+v", a)
	}
	if es := e.audit(Query{Kind: "abort"}); len(es) != 1 || es[0].Who != "api:alice" || es[0].Remote != "127.0.0.1:5" {
		t.Errorf("abort entry: %+v", es)
	}
}

// require_approval: a failed verdict's actions wait (notifications go at once) until a
// human approves or rejects them, within the approval window.
func TestApproval(t *testing.T) {
	e := newEnv(t, envOpts{})
	alice := identity.With(e.ctx(), Actor{Name: "api:alice"})
	c := e.verdict(canaryOpts{analysis: "gated", app: "web", status: analysis.StatusFail})
	acts := e.actuations(c.ID)
	if acts["rollback"].State != StateAwaitingApproval || acts["rollback"].Request == nil || acts["notify"].State != StateSucceeded {
		t.Fatalf("before approval: %+v %+v", acts["rollback"], acts["notify"])
	}
	if n := len(e.rc.deliveries("/rollback/")); n != 0 {
		t.Fatalf("fired before approval")
	}
	if v := value(t, e.g.m.AwaitingApproval); v != 1 {
		t.Errorf("awaiting gauge %v", v)
	}
	if _, err := e.g.Approve(alice, c.ID, []string{"notify"}, ""); !errors.Is(err, ErrNothingAwaiting) {
		t.Errorf("approve a name not awaiting: %v", err)
	}
	if _, err := e.g.Approve(alice, c.ID, nil, "looks real"); err != nil {
		t.Fatal(err)
	}
	e.idle()
	if a := e.actuations(c.ID)["rollback"]; a.State != StateSucceeded || len(e.rc.deliveries("/rollback/")) != 1 {
		t.Errorf("after approval: %+v", a)
	}
	if _, err := e.g.Approve(alice, c.ID, nil, ""); !errors.Is(err, ErrNothingAwaiting) {
		t.Errorf("second approval: %v", err)
	}
	if es := e.audit(Query{Kind: "approve"}); len(es) != 1 || es[0].Who != "api:alice" || es[0].Reason != "looks real" || es[0].Actuator != "rollback" {
		t.Errorf("approve entry: %+v", es)
	}

	// Rejected: never fires.
	r := e.verdict(canaryOpts{analysis: "gated", app: "api", status: analysis.StatusFail})
	if _, err := e.g.Reject(alice, r.ID, nil, "flaky metric"); err != nil {
		t.Fatal(err)
	}
	e.idle()
	if a := e.actuations(r.ID)["rollback"]; a.State != StateRejected || len(e.rc.deliveries("/rollback/api")) != 0 {
		t.Errorf("rejected: %+v", a)
	}

	// Expired: too late to approve; the sweeper expires the rest.
	x := e.verdict(canaryOpts{analysis: "gated", app: "x", status: analysis.StatusFail})
	y := e.verdict(canaryOpts{analysis: "gated", app: "y", status: analysis.StatusFail})
	e.clock.Advance(31 * time.Minute)
	if _, err := e.g.Approve(alice, x.ID, nil, ""); !errors.Is(err, ErrExpired) {
		t.Errorf("late approval: %v", err)
	}
	if err := e.g.Sweep(e.ctx()); err != nil {
		t.Fatal(err)
	}
	if ax, ay := e.actuations(x.ID)["rollback"], e.actuations(y.ID)["rollback"]; ax.State != StateExpired || ay.State != StateExpired {
		t.Errorf("expired: %+v %+v", ax, ay)
	}
	if v := value(t, e.g.m.AwaitingApproval); v != 0 {
		t.Errorf("awaiting gauge %v", v)
	}

	// An abort is a human's decision already: it does not wait.
	ab := e.verdict(canaryOpts{analysis: "gated", app: "z", status: analysis.StatusAborted, kind: "abort"})
	if a := e.actuations(ab.ID)["rollback"]; a.State != StateSucceeded {
		t.Errorf("abort on a gated analysis: %+v", a)
	}
	if _, err := e.g.Approve(alice, "nosuchcanary", nil, ""); !errors.Is(err, analysis.ErrNotFound) {
		t.Errorf("unknown canary: %v", err)
	}
}

// PagerDuty: a failure triggers with the canary id as dedup key; a later pass of the
// same service resolves it, once.
func TestPagerDutyResolve(t *testing.T) {
	e := newEnv(t, envOpts{})
	failed := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	e.verdict(canaryOpts{app: "api", status: analysis.StatusPass}) // another service: nothing to resolve
	if n := len(e.rc.deliveries("/v2/enqueue")); n != 1 {
		t.Fatalf("events: %d", n)
	}
	passed := e.verdict(canaryOpts{app: "web", status: analysis.StatusPass})
	pd := e.rc.deliveries("/v2/enqueue")
	if len(pd) != 2 || !strings.Contains(pd[1].body, `"event_action":"resolve"`) || !strings.Contains(pd[1].body, `"dedup_key":"`+failed.ID+`"`) ||
		pd[1].key != passed.ID+"/resolve:"+failed.ID+"/page" {
		t.Fatalf("resolve: %+v", pd)
	}
	e.verdict(canaryOpts{app: "web", status: analysis.StatusPass})
	if n := len(e.rc.deliveries("/v2/enqueue")); n != 2 {
		t.Errorf("resolved twice: %d events", n)
	}
}

func TestAuditFilters(t *testing.T) {
	e := newEnv(t, envOpts{})
	start := e.clock.Now()
	web := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	e.clock.Advance(time.Hour)
	api := e.verdict(canaryOpts{app: "api", status: analysis.StatusError})
	if err := e.g.RecordReload(identity.With(e.ctx(), Actor{Name: "api:bob"}), "abc123", nil); err != nil {
		t.Fatal(err)
	}
	ev := Event{Canary: api.ID, CanaryName: "test/podinfo", Analysis: "golden", Outcome: "Warning", Reason: "Flagger (Progressing): Halt advancement"}
	if err := e.g.RecordEvent(identity.With(e.ctx(), Actor{Name: "token:flagger", Remote: "10.0.0.9:1234"}), ev); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		q    Query
		want int
		each func(Entry) bool
	}{
		{"all", Query{}, 12, nil},
		{"canary", Query{Canary: web.ID}, 7, func(x Entry) bool { return x.Canary == web.ID }},
		{"service", Query{Service: "api"}, 3, func(x Entry) bool { return x.Service == "api" }},
		{"actuator", Query{Actuator: "page"}, 2, func(x Entry) bool { return x.Actuator == "page" }},
		{"kind", Query{Kind: "verdict"}, 2, func(x Entry) bool { return x.Kind == "verdict" }},
		{"type", Query{Type: "pagerduty"}, 2, func(x Entry) bool { return x.Type == "pagerduty" }},
		{"outcome", Query{Outcome: "succeeded"}, 4, func(x Entry) bool { return x.Outcome == "succeeded" }},
		{"since", Query{Since: start.Add(30 * time.Minute)}, 5, func(x Entry) bool { return x.Canary != web.ID }},
		{"until", Query{Until: start.Add(30 * time.Minute)}, 7, func(x Entry) bool { return x.Canary == web.ID }},
		{"reload", Query{Kind: "reload"}, 1, func(x Entry) bool { return x.Who == "api:bob" && x.Reason == "config abc123" }},
		{"event", Query{Kind: "event"}, 1, func(x Entry) bool {
			return x.Who == "token:flagger" && x.Remote == "10.0.0.9:1234" && x.Canary == api.ID && x.CanaryName == "test/podinfo" &&
				x.Analysis == "golden" && x.Outcome == "Warning" && x.Reason == ev.Reason
		}},
		{"limit", Query{Limit: 2}, 2, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es := e.audit(tc.q)
			if len(es) != tc.want {
				t.Fatalf("%d entries, want %d", len(es), tc.want)
			}
			for i, x := range es {
				if tc.each != nil && !tc.each(x) {
					t.Errorf("entry %+v", x)
				}
				if i > 0 && x.Seq >= es[i-1].Seq {
					t.Errorf("not newest first")
				}
			}
		})
	}
	// Paging with Before visits every entry once.
	seen := map[uint64]bool{}
	q := Query{Limit: 4}
	for {
		es := e.audit(q)
		for _, x := range es {
			if seen[x.Seq] {
				t.Fatalf("entry %d twice", x.Seq)
			}
			seen[x.Seq] = true
		}
		if len(es) < q.Limit {
			break
		}
		q.Before = es[len(es)-1].Seq
	}
	if len(seen) != 12 {
		t.Errorf("paged %d entries", len(seen))
	}
	_ = api
}

// Approvals still go through the breaker: approving a 4th rollback within the hour is
// refused.
func TestApprovalRespectsBreaker(t *testing.T) {
	e := newEnv(t, envOpts{extra: "  breaker: {max: 1, window: 1h}"})
	e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	c := e.verdict(canaryOpts{analysis: "gated", app: "web", status: analysis.StatusFail})
	if _, err := e.g.Approve(e.ctx(), c.ID, nil, ""); err != nil {
		t.Fatal(err)
	}
	e.idle()
	if a := e.actuations(c.ID)["rollback"]; a.State != StateRefused {
		t.Errorf("%+v", a)
	}
}

// A reload with an actuator that cannot be built keeps the old actuators.
func TestConfigure(t *testing.T) {
	e := newEnv(t, envOpts{})
	bad := strings.Replace(e.src, "GUARD_TEST_PD_KEY", "GUARD_TEST_UNSET_KEY", 1)
	cfg, err := parseConfig(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.g.Configure(cfg); err == nil || !strings.Contains(err.Error(), "GUARD_TEST_UNSET_KEY") {
		t.Fatalf("bad reload: %v", err)
	}
	c := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	if a := e.actuations(c.ID)["page"]; a.State != StateSucceeded {
		t.Errorf("old actuators lost: %+v", a)
	}
	// A config without the actuator: actions naming it fail visibly.
	cfg, err = parseConfig(strings.NewReplacer("on_fail: [rollback, notify, page]", "on_fail: [notify]", "on_fail: [rollback, notify]", "on_fail: [notify]", "on_fail: [rollback, mark]", "on_fail: [mark]",
		`  rollback: {type: webhook, url: "`+e.rc.srv.URL+`/rollback/{{ .Vars.app }}", attempts: 3}`+"\n", "").Replace(e.src))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.g.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	// The canary's analysis snapshot still lists rollback.
	c = e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	if a := e.actuations(c.ID)["rollback"]; a.State != StateFailed || a.Error != `actuator "rollback" is not in the current config` {
		t.Errorf("%+v", a)
	}
}

// The metrics are on the registry the caller gave, with the labels dashboards use.
func TestMetricsOnCallerRegistry(t *testing.T) {
	e := newEnv(t, envOpts{extra: "  breaker: {max: 1, window: 1h}"})
	e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	for name, want := range map[string]float64{
		"canaryd_actuator_actions_total{actuator=rollback,outcome=succeeded,type=webhook}": 1,
		"canaryd_actuator_actions_total{actuator=rollback,outcome=refused,type=webhook}":   1,
		"canaryd_actuator_actions_total{actuator=notify,outcome=succeeded,type=webhook}":   2,
		"canaryd_actuator_breaker_refusals_total{actuator=rollback}":                       1,
		"canaryd_actuator_verdict_to_action_seconds{actuator=rollback,outcome=succeeded}":  1,
		"canaryd_actuator_verdict_to_action_seconds{actuator=page,outcome=succeeded}":      2,
		"canaryd_actuator_attempts_total{actuator=page,result=success,type=pagerduty}":     2,
		"canaryd_actuator_attempt_duration_seconds{actuator=rollback,type=webhook}":        1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}
