package guard

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
)

// TestCrashHelper is the child process of TestExactlyOnceAcrossCrash: it ends a canary,
// hands it to its guard and waits to be killed while the actions are in flight.
func TestCrashHelper(t *testing.T) {
	if os.Getenv("GUARD_CRASH_HELPER") != "1" {
		t.Skip("run by TestExactlyOnceAcrossCrash")
	}
	e := envAt(t, os.Getenv("GUARD_CRASH_DB"), os.Getenv("GUARD_CRASH_CONFIG"), nil, zap.NewNop())
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	e.g.OnVerdict(context.Background(), c, act)
	time.Sleep(60 * time.Second) // killed long before
	os.Exit(3)
}

// A crash between an action's intent and its outcome: a real canaryd process is killed
// while its three actions are at the receivers. After the restart each is fired again
// with the same idempotency key and body, so each receiver applies it once; a second
// restart fires nothing.
func TestExactlyOnceAcrossCrash(t *testing.T) {
	rc := newReceiver(t)
	hold, held := make(chan struct{}), make(chan struct{})
	rc.mu.Lock()
	rc.hold, rc.held, rc.holdAll = hold, held, true
	rc.mu.Unlock()
	src := configFor(rc, envOpts{})
	path := filepath.Join(t.TempDir(), "canaryd.db")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "GUARD_CRASH_HELPER=1", "GUARD_CRASH_DB="+path, "GUARD_CRASH_CONFIG="+src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatalf("the child never fired:\n%s", out.String())
	}
	// Let the other actions reach the receiver too, then kill -9 mid-flight.
	deadline := time.Now().Add(20 * time.Second)
	for len(rc.deliveries("/")) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	rc.mu.Lock()
	rc.holdAll, rc.hold = false, nil
	rc.mu.Unlock()
	close(hold)
	first := rc.deliveries("/")
	if len(first) != 3 {
		t.Fatalf("deliveries before the crash: %+v\n%s", first, out.String())
	}

	// Restart: the actions are found mid-flight.
	e := envAt(t, path, src, rc, nil)
	ids := map[string]bool{}
	for _, d := range first {
		ids[strings.SplitN(d.key, "/", 2)[0]] = true
	}
	if len(ids) != 1 {
		t.Fatalf("keys %+v", first)
	}
	var id string
	for k := range ids {
		id = k
	}
	for name, a := range e.actuations(id) {
		if a.State != StateFiring || a.Attempts != 1 {
			t.Fatalf("%s after the crash: %+v", name, a)
		}
	}
	rep, err := e.g.Recover(e.ctx())
	if err != nil || rep.Resumed != 3 || rep.Planned != 0 {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	e.idle()
	all := rc.deliveries("/")
	if len(all) != 6 {
		t.Fatalf("deliveries: %d, want 3 before and 3 after", len(all))
	}
	byKey := map[string][]delivery{}
	for _, d := range all {
		byKey[d.key] = append(byKey[d.key], d)
	}
	for key, ds := range byKey {
		if len(ds) != 2 || ds[0].body != ds[1].body {
			t.Errorf("%s: %d deliveries, same body %v", key, len(ds), len(ds) == 2 && ds[0].body == ds[1].body)
		}
		if n := rc.appliedTimes(key); n != 1 {
			t.Errorf("%s applied %d times", key, n)
		}
	}
	for name, a := range e.actuations(id) {
		if a.State != StateSucceeded || a.Attempts != 2 {
			t.Errorf("%s after recovery: %+v", name, a)
		}
	}
	if es := e.audit(Query{Canary: id, Kind: "recover"}); len(es) != 3 || !strings.Contains(es[0].Error, "interrupted by a restart; firing again with the same idempotency key") {
		t.Errorf("recover entries: %+v", es)
	}

	// A second restart finds everything finished.
	e.close()
	e = envAt(t, path, src, rc, nil)
	if rep, err := e.g.Recover(e.ctx()); err != nil || rep.Resumed != 0 || rep.Planned != 0 {
		t.Fatalf("second recover: %+v %v", rep, err)
	}
	e.idle()
	if n := len(rc.deliveries("/")); n != 6 {
		t.Errorf("fired again after a clean restart: %d deliveries", n)
	}
}

// A crash between the store's write of the verdict and the guard's plan: the guard never
// heard of the canary. Recover finds it and fires its actions once; a canary that ended
// before recover_window is recorded and left alone.
func TestRecoverPlansLostVerdict(t *testing.T) {
	e := newEnv(t, envOpts{})
	old, _ := e.end(canaryOpts{app: "legacy", status: analysis.StatusFail})
	e.clock.Advance(2 * time.Hour)
	lost, _ := e.end(canaryOpts{app: "web", status: analysis.StatusFail}) // OnVerdict never called
	e.close()

	e.open(nil)
	rep, err := e.g.Recover(e.ctx())
	if err != nil || rep.Planned != 1 || rep.Stale != 1 {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	e.idle()
	if d := e.rc.deliveries("/rollback/"); len(d) != 1 || d[0].key != lost.ID+"/on_fail/rollback" {
		t.Errorf("rollbacks: %+v", d)
	}
	if as := e.actuations(old.ID); len(as) != 0 {
		t.Errorf("a stale canary was actuated: %+v", as)
	}
	if es := e.audit(Query{Canary: old.ID}); len(es) != 1 || es[0].Kind != "recover" || es[0].Outcome != "skipped" {
		t.Errorf("stale entry: %+v", es)
	}
	if es := e.audit(Query{Canary: lost.ID, Kind: "verdict"}); len(es) != 1 || es[0].Who != "canaryd (recovered)" {
		t.Errorf("verdict entry: %+v", es)
	}
	// Recover again, and a late OnVerdict for the same canary: nothing more.
	if rep, err := e.g.Recover(e.ctx()); err != nil || rep.Planned != 0 || rep.Stale != 0 {
		t.Errorf("second recover: %+v %v", rep, err)
	}
	c, act := e.end(canaryOpts{app: "x", status: analysis.StatusPass})
	_ = c
	lostC, err := e.st.Get(e.ctx(), lost.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.g.OnVerdict(e.ctx(), lostC, act)
	e.idle()
	if d := e.rc.deliveries("/rollback/"); len(d) != 1 {
		t.Errorf("rollbacks after a late OnVerdict: %d", len(d))
	}
}

// What a crash leaves behind, found at the next start: an action mid-flight whose
// actuator says resume: skip is abandoned (outcome unknown, for a human), not fired
// again; one mid-flight otherwise is fired again; an intent never attempted is fired.
func TestRecoverResumeSkip(t *testing.T) {
	e := newEnv(t, envOpts{actuators: `  undo: {type: webhook, url: "` + "@HOOK@" + `/undo", resume: skip}`})
	c, _ := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	now := e.clock.Now()
	// The state a crash right after the claim leaves behind.
	for _, r := range []*Actuation{
		{Key: c.ID + "/on_fail/undo", CanaryID: c.ID, Service: "web", Trigger: TriggerFail, Actuator: "undo", Type: "webhook",
			State: StateFiring, Attempts: 1, MaxAttempts: 1, CreatedAt: now, UpdatedAt: now},
		{Key: c.ID + "/on_fail/rollback", CanaryID: c.ID, Service: "web", Trigger: TriggerFail, Actuator: "rollback", Type: "webhook",
			State: StateFiring, Attempts: 1, MaxAttempts: 3, CreatedAt: now, UpdatedAt: now},
		// The intent was persisted, the process died before the first attempt.
		{Key: c.ID + "/on_fail/notify", CanaryID: c.ID, Service: "web", Trigger: TriggerFail, Actuator: "notify", Type: "webhook",
			State: StatePending, MaxAttempts: 3, CreatedAt: now, UpdatedAt: now},
	} {
		r.Event.Key, r.Event.ID, r.Event.Vars = r.Key, c.ID, map[string]string{"app": "web"}
		if err := e.g.store.Update(e.ctx(), func(tx Tx) error {
			if err := tx.MarkPlanned(c.ID, PlannedRecord{}); err != nil {
				return err
			}
			return tx.PutActuation(r)
		}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.g.Recover(e.ctx())
	if err != nil || rep.Abandoned != 1 || rep.Resumed != 2 {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	e.idle()
	acts := e.actuations(c.ID)
	if a := acts["undo"]; a.State != StateAbandoned || !strings.Contains(a.Error, "resume: skip") {
		t.Errorf("undo: %+v", a)
	}
	if n := len(e.rc.deliveries("/undo")); n != 0 {
		t.Errorf("undo fired %d times", n)
	}
	if a := acts["rollback"]; a.State != StateSucceeded || a.Attempts != 2 {
		t.Errorf("rollback: %+v", a)
	}
	if a := acts["notify"]; a.State != StateSucceeded || a.Attempts != 1 || len(e.rc.deliveries("/notify")) != 1 {
		t.Errorf("notify: %+v", a)
	}
}

// A shutdown that cuts an attempt short leaves it firing, and the next start fires it
// again with the same key.
func TestShutdownMidAttempt(t *testing.T) {
	e := newEnv(t, envOpts{})
	hold, held := make(chan struct{}), make(chan struct{})
	e.rc.mu.Lock()
	e.rc.hold, e.rc.held, e.rc.holdAll = hold, held, true
	e.rc.mu.Unlock()
	c, act := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	e.g.OnVerdict(e.ctx(), c, act)
	<-held
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	e.g.Stop(ctx) // gives up on the held attempts
	cancel()
	e.rc.mu.Lock()
	e.rc.holdAll, e.rc.hold = false, nil
	e.rc.mu.Unlock()
	close(hold)
	e.g = nil
	e.close()

	e.open(nil)
	if _, err := e.g.Recover(e.ctx()); err != nil {
		t.Fatal(err)
	}
	e.idle()
	a := e.actuations(c.ID)["rollback"]
	ds := e.rc.deliveries("/rollback/")
	if a.State != StateSucceeded || len(ds) < 1 || ds[len(ds)-1].key != c.ID+"/on_fail/rollback" || e.rc.appliedTimes(a.Key) != 1 {
		t.Errorf("%+v, deliveries %d", a, len(ds))
	}
}

// An exec attempt cut by a crash whose command created its completion marker is
// recorded as succeeded at the restart, not run again, and not abandoned even with
// resume: skip.
func TestRecoverExecCompletionMarker(t *testing.T) {
	runsFile := filepath.Join(t.TempDir(), "runs")
	e := newEnv(t, envOpts{actuators: `  undo: {type: exec, resume: skip, env: {RUNS: "` + runsFile + `"}, command: [sh, -c, 'echo ran >> "$RUNS"; : > "$CANARYD_DONE_FILE"']}`})
	c, _ := e.end(canaryOpts{app: "web", status: analysis.StatusFail})
	now := e.clock.Now()
	r := &Actuation{Key: c.ID + "/on_fail/undo", CanaryID: c.ID, Service: "web", Trigger: TriggerFail, Actuator: "undo", Type: "exec",
		State: StateFiring, Attempts: 1, MaxAttempts: 1, CreatedAt: now, UpdatedAt: now}
	r.Event.Key, r.Event.ID = r.Key, c.ID
	// The attempt the crash cut short: the command ran to its end (and made its marker).
	if _, err := e.g.setup.Load().acts["undo"].act.Act(e.ctx(), r.Event); err != nil {
		t.Fatal(err)
	}
	if err := e.g.store.Update(e.ctx(), func(tx Tx) error {
		if err := tx.MarkPlanned(c.ID, PlannedRecord{}); err != nil {
			return err
		}
		return tx.PutActuation(r)
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := e.g.Recover(e.ctx())
	if err != nil || rep.Abandoned != 0 || rep.Resumed != 1 {
		t.Fatalf("recover: %+v %v", rep, err)
	}
	e.idle()
	a := e.actuations(c.ID)["undo"]
	if a.State != StateSucceeded || a.Attempts != 2 || !strings.Contains(a.Output, "not run again") {
		t.Errorf("undo: %+v", a)
	}
	if b, _ := os.ReadFile(runsFile); string(b) != "ran\n" {
		t.Errorf("runs: %q, want one", b)
	}
	if c, ok := e.g.setup.Load().acts["undo"].act.(actuators.Completion); !ok || c.Completed(r.Event) {
		t.Errorf("marker not removed once the outcome was recorded")
	}
}
