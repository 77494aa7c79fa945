package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// A command runs detached from canaryd (its own process group), so a kill -9 of canaryd
// orphans it and the restart fires the action again. Two files per action, under
// actuators.Options.StateDir, let the restart know better:
//
//   - the completion marker, CANARYD_DONE_FILE: the command creates it once its work is
//     done. An action whose marker exists is reported done without running again.
//   - the run file: written before the command starts (an intent, without a pid), then
//     with the pid (and start time) once it has started, and removed when it ends. A
//     restart that finds it and the process still alive waits for it (until its
//     timeout, then kills its group) before deciding. A restart that finds only the
//     intent (canaryd died between starting the command and recording its pid) waits
//     for every process whose environment carries the action's
//     CANARYD_IDEMPOTENCY_KEY (Linux /proc; elsewhere that window stays at-least-once).

// outputPath is where the command's stdout and stderr go while it runs.
func outputPath(run string) string { return strings.TrimSuffix(run, ".run") + ".out" }

// readOutput returns the first limit bytes of the output file, saying how much was cut.
func readOutput(path string, limit int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	c := &capped{limit: limit}
	_, _ = io.Copy(c, f)
	return c.String()
}

// runRecord is what the run file holds.
type runRecord struct {
	PID int `json:"pid"`
	// Start is the process' start time as the kernel reports it (clock ticks since
	// boot), so that a reused pid is not mistaken for the command.
	Start    uint64    `json:"start"`
	Deadline time.Time `json:"deadline"`
}

// statePaths are the marker and run file of an action; empty without a state dir.
func (x *Exec) statePaths(key string) (done, run string) {
	if x.o.StateDir == "" {
		return "", ""
	}
	h := sha256.Sum256([]byte(key))
	base := filepath.Join(x.o.StateDir, hex.EncodeToString(h[:16]))
	return base + ".done", base + ".run"
}

// Completed reports whether e's command left its completion marker: its work is done.
func (x *Exec) Completed(e actuators.Event) bool {
	done, _ := x.statePaths(e.Key)
	if done == "" {
		return false
	}
	_, err := os.Stat(done)
	return err == nil
}

// Forget removes e's marker once the guard has recorded the action's final outcome.
func (x *Exec) Forget(e actuators.Event) {
	if done, _ := x.statePaths(e.Key); done != "" {
		_ = os.Remove(done)
	}
}

// alreadyDone is the result of an action whose marker exists.
func alreadyDone(done string) actuators.Result {
	return actuators.Result{Output: fmt.Sprintf("completion marker %s exists: the command already ran to completion; not run again", done)}
}

// awaitOrphan waits for the command a previous canaryd started for this action (key),
// if it still runs, and removes its run file. It kills the command's group once the
// run's timeout has passed.
func awaitOrphan(ctx context.Context, run, key string) error {
	b, err := os.ReadFile(run)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read run file: %w", err)
	}
	var r runRecord
	if err := json.Unmarshal(b, &r); err != nil {
		_ = os.Remove(run) // torn by the crash: the command had not started
		return nil
	}
	// An intent without a pid: the command may have started, so it is found by the
	// key in its environment (its children carry it too).
	procs := []orphanProc{{r.PID, r.Start}}
	if r.PID <= 0 {
		procs = withEnv(eventKeyEnv + key)
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		alive := procs[:0]
		for _, p := range procs {
			if running(p.pid, p.start) {
				alive = append(alive, p)
			}
		}
		if procs = alive; len(procs) == 0 {
			break
		}
		if time.Now().After(r.Deadline) {
			for _, p := range procs {
				killOrphan(p.pid)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return os.Remove(run)
}

// orphanProc is a process a previous canaryd started, as pid and start time.
type orphanProc struct {
	pid   int
	start uint64
}

// writeRun records the started command; written to a temporary file and renamed, so
// a crash leaves the old content or the new, never half.
func writeRun(run string, r runRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := run + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, run)
}
