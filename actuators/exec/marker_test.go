package exec

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

func runs(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

func onceActuator(t *testing.T, state, runsFile string, sleep string) *Exec {
	t.Helper()
	c := DefaultConfig()
	c.Command = []string{script(t, "once.sh")}
	c.Env = map[string]string{"RUNS": runsFile, "SLEEP": sleep}
	x, err := New(c, actuators.Options{Name: "rollback", StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// A command that created its completion marker is not run again for the same action;
// Forget (the outcome is recorded) clears the marker.
func TestExecCompletionMarker(t *testing.T) {
	dir := t.TempDir()
	state, runsFile := filepath.Join(dir, "state"), filepath.Join(dir, "runs")
	x := onceActuator(t, state, runsFile, "0")
	e := event()
	if x.Completed(e) {
		t.Fatal("completed before running")
	}
	if res, err := x.Act(t.Context(), e); err != nil || res.Status != 0 {
		t.Fatalf("first run: %+v %v", res, err)
	}
	if !x.Completed(e) {
		t.Fatal("no marker after the run")
	}
	res, err := x.Act(t.Context(), e)
	if err != nil || !strings.Contains(res.Output, "not run again") {
		t.Fatalf("second act: %+v %v", res, err)
	}
	if n := runs(t, runsFile); n != 1 {
		t.Errorf("ran %d times, want 1", n)
	}
	other := e
	other.Key = "c2/on_fail/rollback"
	if x.Completed(other) {
		t.Error("another action's marker is shared")
	}
	x.Forget(e)
	if x.Completed(e) {
		t.Error("marker still there after Forget")
	}
	// Without a state dir there is no marker: the command gets no CANARYD_DONE_FILE.
	plain := onceActuator(t, "", runsFile, "0")
	if _, err := plain.Act(t.Context(), e); err != nil || plain.Completed(e) {
		t.Fatalf("without state dir: %v", err)
	}
	if n := runs(t, runsFile); n != 2 {
		t.Errorf("ran %d times in all, want 2", n)
	}
}

// A command a previous canaryd started (and orphaned by dying) is waited for: when it
// finishes with its marker, the action is done without a second run.
func TestExecWaitsForOrphan(t *testing.T) {
	dir := t.TempDir()
	state, runsFile := filepath.Join(dir, "state"), filepath.Join(dir, "runs")
	x := onceActuator(t, state, runsFile, "1")
	e := event()
	done, run := x.statePaths(e.Key)
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	// The orphan: started as canaryd starts it, with its run file.
	orphan := osexec.Command(script(t, "once.sh"))
	orphan.Env = append(os.Environ(), "RUNS="+runsFile, "SLEEP=1", "CANARYD_DONE_FILE="+done)
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = orphan.Wait(); close(exited) }() // reaps it, as init would
	st, _, _ := procStart(orphan.Process.Pid)
	if err := writeRun(run, runRecord{PID: orphan.Process.Pid, Start: st, Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	res, err := x.Act(t.Context(), e)
	if err != nil || !strings.Contains(res.Output, "not run again") {
		t.Fatalf("act: %+v %v", res, err)
	}
	<-exited
	if took := time.Since(t0); took < 500*time.Millisecond {
		t.Errorf("returned after %s: did not wait for the orphan", took)
	}
	if n := runs(t, runsFile); n != 1 {
		t.Errorf("ran %d times, want 1", n)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("run file left: %v", err)
	}

	// A run file naming a process that is gone (a reused pid has another start time)
	// does not hold the action.
	if err := writeRun(run, runRecord{PID: os.Getpid(), Start: st + 12345, Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	x.Forget(e)
	if _, err := x.Act(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if n := runs(t, runsFile); n != 2 {
		t.Errorf("ran %d times, want 2", n)
	}
}

// canaryd killed between starting the command and recording its pid leaves only the
// intent: the restart finds the orphan by the action's key in its environment and
// waits for it, so a command with the marker still runs once.
func TestExecWaitsForOrphanWithoutPID(t *testing.T) {
	cases := []struct {
		name string
		key  string // the orphan's CANARYD_IDEMPOTENCY_KEY
		runs int
	}{
		{name: "same action", key: event().Key, runs: 1},
		{name: "another action", key: event().Key + "x", runs: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			state, runsFile := filepath.Join(dir, "state"), filepath.Join(dir, "runs")
			x := onceActuator(t, state, runsFile, "1")
			e := event()
			done, run := x.statePaths(e.Key)
			if err := os.MkdirAll(state, 0o700); err != nil {
				t.Fatal(err)
			}
			orphan := osexec.Command(script(t, "once.sh"))
			orphan.Env = append(os.Environ(), "RUNS="+runsFile, "SLEEP=1", "CANARYD_DONE_FILE="+done, eventKeyEnv+tc.key)
			orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := writeRun(run, runRecord{Deadline: time.Now().Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if err := orphan.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _ = orphan.Wait(); close(exited) }()
			t.Cleanup(func() { killOrphan(orphan.Process.Pid); <-exited })
			if _, err := x.Act(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			<-exited
			if n := runs(t, runsFile); n != tc.runs {
				t.Errorf("ran %d times, want %d", n, tc.runs)
			}
			if _, err := os.Stat(run); !os.IsNotExist(err) {
				t.Errorf("run file left: %v", err)
			}
		})
	}
}

// With a state dir the output goes through a file (an orphan can still write it), and is
// kept to the limit as through a pipe.
func TestExecOutputThroughFile(t *testing.T) {
	c := DefaultConfig()
	c.Command = []string{"sh", "-c", "printf 'abcdefghij%.0s' 1 2 3; echo err >&2"}
	state := t.TempDir()
	x, err := New(c, actuators.Options{Name: "rollback", StateDir: state, OutputLimit: 12})
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Act(t.Context(), event())
	if err != nil || res.Output != "abcdefghijab…[22 bytes cut]" {
		t.Fatalf("output %q %v", res.Output, err)
	}
	left, _ := filepath.Glob(filepath.Join(state, "*.out"))
	if len(left) != 0 {
		t.Errorf("output files left: %v", left)
	}
}
