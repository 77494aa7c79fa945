package guard

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
)

// A canary's on_start actions fire once when it is registered, with the guard's rules:
// one intent per actuator (a name listed twice is one action), the audit log records the
// start and each step, and a second OnStart (or a Recover) fires nothing more.
func TestOnStartFiresOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.register("announced", "web")
	e.g.OnStart(context.Background(), c)
	e.g.OnStart(context.Background(), c)
	e.idle()
	if rep, err := e.g.Recover(e.ctx()); err != nil || rep.Started != 0 || rep.StaleStarts != 0 {
		t.Fatalf("recover after OnStart: %+v %v", rep, err)
	}
	e.idle()
	notify, mark := e.rc.deliveries("/notify"), e.rc.deliveries("/mark/")
	if len(notify) != 1 || notify[0].key != c.ID+"/on_start/notify" || len(mark) != 1 || mark[0].path != "/mark/on_start" {
		t.Fatalf("deliveries: notify %+v, mark %+v", notify, mark)
	}
	var body struct {
		actuators.Event
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(notify[0].body), &body); err != nil {
		t.Fatal(err)
	}
	ev := body.Event
	if ev.Trigger != "on_start" || ev.Status != "running" || ev.Kind != "start" || ev.Cause != "" || ev.Score != nil ||
		ev.Reason != "canary registered" || !ev.Start.Equal(c.Start) || !ev.Time.Equal(c.CreatedAt) || ev.Service != "web" {
		t.Errorf("on_start event: %+v", ev)
	}
	as := e.actuations(c.ID)
	if len(as) != 2 || as["notify"].State != StateSucceeded || as["mark"].State != StateSucceeded || as["mark"].Trigger != "on_start" {
		t.Errorf("actions: %+v", as)
	}
	start := e.audit(Query{Canary: c.ID, Kind: "start"})
	if len(start) != 1 || start[0].Outcome != "running" || start[0].Trigger != "on_start" || start[0].Who != "api" {
		t.Errorf("start entry: %+v", start)
	}
	if acts := e.audit(Query{Canary: c.ID, Kind: "action"}); len(acts) != 4 { // planned + succeeded, per action
		t.Errorf("action entries: %d %+v", len(acts), acts)
	}

	// The canary's end fires its own list, apart from the start.
	end, act := e.endRegistered(c, analysis.StatusFail)
	e.g.OnVerdict(context.Background(), end, act)
	e.idle()
	if d := e.rc.deliveries("/mark/on_fail"); len(d) != 1 || d[0].key != c.ID+"/on_fail/mark" {
		t.Errorf("on_fail after on_start: %+v", d)
	}
	if d := e.rc.deliveries("/rollback/web"); len(d) != 1 {
		t.Errorf("rollback: %+v", d)
	}
}

// An on_start action changes nothing a cooldown protects: it does not wait for one, and
// it does not put its service in one (another canary's rollback right after it fires).
func TestOnStartAndCooldown(t *testing.T) {
	e := newEnv(t, envOpts{extra: "  breaker: {max: 0}\n  cooldown: 15m"})
	first := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail}) // web is in its cooldown from now
	c := e.register("announced", "web")
	e.g.OnStart(context.Background(), c)
	e.idle()
	if a := e.actuations(c.ID)["mark"]; a.State != StateSucceeded {
		t.Errorf("on_start during a cooldown: %+v", a)
	}
	e.clock.Advance(16 * time.Minute) // first's cooldown is over; c's start must not begin another
	other := e.register("announced", "web")
	e.g.OnStart(context.Background(), other)
	e.idle()
	next := e.verdict(canaryOpts{app: "web", status: analysis.StatusFail})
	if a := e.actuations(next.ID)["rollback"]; a.State != StateSucceeded {
		t.Errorf("rollback after another canary's on_start: %+v", a)
	}
	if a := e.actuations(first.ID)["rollback"]; a.State != StateSucceeded {
		t.Errorf("first: %+v", a)
	}
}

// A canary stored while its on_start plan was lost (canaryd died in between) is planned
// at the next start; one registered longer than recover_window ago is recorded as
// skipped; a canary whose analysis has no on_start list leaves no trace.
func TestRecoverPlansLostStart(t *testing.T) {
	e := newEnv(t, envOpts{})
	old := e.register("announced", "legacy")
	plain := e.register("golden", "web")
	e.clock.Advance(2 * time.Hour)
	lost := e.register("announced", "web") // OnStart never called
	e.close()

	e.open(nil)
	rep, err := e.g.Recover(e.ctx())
	if err != nil || rep.Started != 1 || rep.StaleStarts != 1 || rep.Planned != 0 {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	e.idle()
	if d := e.rc.deliveries("/notify"); len(d) != 1 || d[0].key != lost.ID+"/on_start/notify" {
		t.Errorf("notifications: %+v", d)
	}
	if es := e.audit(Query{Canary: lost.ID, Kind: "start"}); len(es) != 1 || es[0].Who != "canaryd (recovered)" {
		t.Errorf("start entry: %+v", es)
	}
	if es := e.audit(Query{Canary: old.ID}); len(es) != 1 || es[0].Kind != "recover" || es[0].Outcome != "skipped" || es[0].Trigger != "on_start" {
		t.Errorf("stale start: %+v", es)
	}
	if es := e.audit(Query{Canary: plain.ID}); len(es) != 0 {
		t.Errorf("a canary without on_start: %+v", es)
	}
	if rep, err := e.g.Recover(e.ctx()); err != nil || rep.Started != 0 || rep.StaleStarts != 0 {
		t.Errorf("second recover: %+v %v", rep, err)
	}
	e.g.OnStart(context.Background(), lost) // late: nothing more
	e.idle()
	if d := e.rc.deliveries("/notify"); len(d) != 1 {
		t.Errorf("notifications after a late OnStart: %d", len(d))
	}
}
