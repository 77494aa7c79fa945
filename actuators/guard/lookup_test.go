package guard

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

// lookupHook is the rollback webhook of a receiver that ignores the idempotency key
// but can say whether an attempt took effect, as Grafana can (actuators.Lookup).
type lookupHook struct {
	actuators.Actuator
	mu     sync.Mutex
	asked  []int // the attempts it was asked before, by the key's delivery count
	rc     *receiver
	answer func() (actuators.Result, bool, error)
}

func (l *lookupHook) Applied(_ context.Context, e actuators.Event) (actuators.Result, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, len(l.rc.deliveries("/rollback/")))
	return l.answer()
}

// An attempt after the first of an actuator that can look its earlier attempts up asks
// first (never before the first): one that took effect, its answer lost (here a 503 from
// a proxy after the receiver applied it), is recorded as succeeded without being sent
// again; one not found, or a lookup that fails, is sent again, and the audit log says
// it may then be applied twice.
func TestLookupBeforeRetry(t *testing.T) {
	found := actuators.Result{Status: 200, Output: "annotation 7 is already there"}
	const ok = `{"status":"success"}` // the receiver's answer to a delivery
	cases := []struct {
		name       string
		codes      []int
		answer     func() (actuators.Result, bool, error)
		asked      []int
		deliveries int
		reason     string
		output     string
		result     string
	}{
		{name: "the first attempt succeeds", asked: nil, deliveries: 1, result: "success", output: ok},
		{
			name: "found after a lost answer", codes: []int{503}, asked: []int{1}, deliveries: 1, result: "already_applied",
			answer: func() (actuators.Result, bool, error) { return found, true, nil },
			reason: "an earlier attempt took effect (its answer was lost): attempt 2 sent nothing", output: found.Output,
		},
		{
			name: "not found", codes: []int{503}, asked: []int{1}, deliveries: 2, result: "success", output: ok,
			answer: func() (actuators.Result, bool, error) { return actuators.Result{Status: 200, Output: "[]"}, false, nil },
		},
		{
			name: "the lookup fails", codes: []int{503}, asked: []int{1}, deliveries: 2, result: "success", output: ok,
			answer: func() (actuators.Result, bool, error) {
				return actuators.Result{}, false, errors.New("GET …: 403 Forbidden")
			},
			reason: "could not check whether an earlier attempt took effect (GET …: 403 Forbidden): attempt 2 sent it again, so it may be applied twice",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			var hook *lookupHook
			e := &env{t: t, src: configFor(rc, envOpts{}), rc: rc, build: func(a *config.Actuator, o actuators.Options) (actuators.Actuator, error) {
				act, err := a.Build(o)
				if err != nil || o.Name != "rollback" {
					return act, err
				}
				hook = &lookupHook{Actuator: act, rc: rc, answer: tc.answer}
				return hook, nil
			}}
			envAtWith(t, e)
			rc.queue("/rollback/web", tc.codes...)
			c := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
			a := e.actuations(c.ID)["rollback"]
			if a.State != StateSucceeded || a.Attempts != len(tc.codes)+1 || a.Output != tc.output {
				t.Errorf("action: %+v", a)
			}
			if n := len(rc.deliveries("/rollback/")); n != tc.deliveries {
				t.Errorf("%d deliveries, want %d", n, tc.deliveries)
			}
			hook.mu.Lock()
			if len(hook.asked) != len(tc.asked) || len(tc.asked) > 0 && hook.asked[0] != tc.asked[0] {
				t.Errorf("asked after deliveries %v, want %v", hook.asked, tc.asked)
			}
			hook.mu.Unlock()
			last := e.audit(Query{Canary: c.ID, Actuator: "rollback", Kind: KindAction})[0] // newest first
			if last.Outcome != string(StateSucceeded) || last.Reason != tc.reason || last.Attempt != len(tc.codes)+1 {
				t.Errorf("audit: %+v, want the reason %q", last, tc.reason)
			}
			if v := value(t, e.g.m.Attempts.WithLabelValues("rollback", "webhook", tc.result)); v != 1 {
				t.Errorf("attempts{result=%q} = %v", tc.result, v)
			}
		})
	}
}
