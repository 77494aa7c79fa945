// Package exec is the exec actuator: it runs a command (argv rendered from templates, no
// shell) with a timeout that kills the command and its children, captures its output up
// to a bound, and reports exit 0 as success. It never retries itself; it never runs a
// shell unless the config names one as the program.
package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// Exec is a built exec actuator.
type Exec struct {
	o    actuators.Options
	c    Config
	argv []*actuators.Template
	env  map[string]*actuators.Template
	// preflight is the preflight command's argv, nil when none is configured.
	preflight []*actuators.Template
}

var _ actuators.Actuator = (*Exec)(nil)

// New builds an exec actuator from its config.
func New(c Config, o actuators.Options) (*Exec, error) {
	if es := c.Validate(); len(es) > 0 {
		return nil, fmt.Errorf("exec %s: %w", o.Name, es)
	}
	x := &Exec{o: o, c: c, env: map[string]*actuators.Template{}}
	for i, a := range c.Command {
		t, err := actuators.ParseTemplate(field.Index("command", i), a)
		if err != nil {
			return nil, fmt.Errorf("exec %s: %w", o.Name, err)
		}
		x.argv = append(x.argv, t)
	}
	for i, a := range c.Preflight {
		t, err := actuators.ParseTemplate(field.Index("preflight", i), a)
		if err != nil {
			return nil, fmt.Errorf("exec %s: %w", o.Name, err)
		}
		x.preflight = append(x.preflight, t)
	}
	for k, v := range c.Env {
		t, err := actuators.ParseTemplate("env."+k, v)
		if err != nil {
			return nil, fmt.Errorf("exec %s: %w", o.Name, err)
		}
		x.env[k] = t
	}
	return x, nil
}

// Program is the command's program as configured (argv[0], maybe a template), so the
// daemon can warn at start when it is not on the PATH.
func (x *Exec) Program() string { return x.c.Command[0] }

func (x *Exec) render(e actuators.Event) (argv []string, env map[string]string, err error) {
	return x.renderArgv("command", x.argv, e)
}

// renderArgv renders the argv ts (the config's key path) and the env for e, refusing
// an element whose leading dash a value wrote.
func (x *Exec) renderArgv(path string, ts []*actuators.Template, e actuators.Event) (argv []string, env map[string]string, err error) {
	d := actuators.Data{Event: e}
	for _, t := range ts {
		a, err := t.Render(d)
		if err != nil {
			return nil, nil, err
		}
		argv = append(argv, a)
	}
	if argv[0] == "" {
		return nil, nil, fmt.Errorf("%s[0] rendered empty", path)
	}
	if err := actuators.CheckArgv(path, ts, argv); err != nil {
		return nil, nil, err
	}
	env = make(map[string]string, len(x.env))
	for k, t := range x.env {
		v, err := t.Render(d)
		if err != nil {
			return nil, nil, err
		}
		env[k] = v
	}
	return argv, env, nil
}

// eventKeyEnv prefixes the action's idempotency key in the command's environment; a
// restart also finds an orphaned command by it.
const eventKeyEnv = "CANARYD_IDEMPOTENCY_KEY="

// eventEnv is what every command gets, besides the event on stdin.
func eventEnv(e actuators.Event) []string {
	return []string{
		eventKeyEnv + e.Key,
		"CANARYD_ACTION=" + e.Action,
		"CANARYD_DEDUP_KEY=" + e.DedupKey,
		"CANARYD_CANARY_ID=" + e.ID,
		"CANARYD_CANARY_NAME=" + e.Name,
		"CANARYD_ANALYSIS=" + e.Analysis,
		"CANARYD_STATUS=" + e.Status,
		"CANARYD_TRIGGER=" + e.Trigger,
		"CANARYD_SERVICE=" + e.Service,
		"CANARYD_REASON=" + e.Reason,
	}
}

// Render returns the command exec would run.
func (x *Exec) Render(e actuators.Event) (actuators.Request, error) {
	argv, env, err := x.render(e)
	if err != nil {
		return actuators.Request{}, err
	}
	return actuators.Request{Target: strings.Join(argv, " "), Argv: argv, Env: env}, nil
}

// Act runs the command once.
func (x *Exec) Act(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	argv, env, err := x.render(e)
	if err != nil {
		return actuators.Result{}, err
	}
	stdin, err := json.Marshal(e)
	if err != nil {
		return actuators.Result{}, fmt.Errorf("encode event: %w", err)
	}
	done, run := x.statePaths(e.Key)
	if done != "" {
		// A previous canaryd may have started this action's command and died: wait for
		// it, then believe its marker.
		if err := awaitOrphan(ctx, run, e.Key); err != nil {
			return actuators.Result{}, actuators.Retryable(fmt.Errorf("wait for the command a previous canaryd started: %w", err))
		}
		if x.Completed(e) {
			res := alreadyDone(done)
			if prev := readOutput(outputPath(run), x.o.Limit()); prev != "" {
				res.Output += "; its output: " + prev
			}
			_ = os.Remove(outputPath(run))
			return res, nil
		}
		if err := os.MkdirAll(x.o.StateDir, 0o700); err != nil {
			return actuators.Result{}, fmt.Errorf("exec state dir: %w", err)
		}
	}
	timeout := time.Duration(x.c.Timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = x.c.Dir
	if x.c.InheritEnv {
		cmd.Env = os.Environ()
	}
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Env = append(cmd.Env, eventEnv(e)...)
	if done != "" {
		cmd.Env = append(cmd.Env, "CANARYD_DONE_FILE="+done)
	}
	cmd.Stdin = bytes.NewReader(stdin)
	out := &capped{limit: x.o.Limit()}
	cmd.Stdout, cmd.Stderr = out, out
	var outFile *os.File
	if run != "" {
		// A file, not a pipe: a command orphaned by canaryd's death can still write its
		// output (a pipe would kill it with SIGPIPE before it finishes its work).
		if outFile, err = os.OpenFile(outputPath(run), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600); err != nil {
			return actuators.Result{}, fmt.Errorf("exec output file: %w", err)
		}
		defer outFile.Close()
		cmd.Stdout, cmd.Stderr = outFile, outFile
	}
	killGroup(cmd)
	// A child that keeps the output pipe open past the kill must not hold Act forever.
	cmd.WaitDelay = 2 * time.Second

	if run != "" {
		// The intent, before the command can do any work: a canaryd killed before the
		// pid is recorded leaves it, and the restart looks for the command by its key.
		// Best effort, as the record below: without them a restart cannot wait for an
		// orphan, and the action is at-least-once as without a state dir.
		_ = writeRun(run, runRecord{Deadline: time.Now().Add(timeout)})
	}
	if err = cmd.Start(); err == nil {
		if run != "" {
			st, _, _ := procStart(cmd.Process.Pid)
			_ = writeRun(run, runRecord{PID: cmd.Process.Pid, Start: st, Deadline: time.Now().Add(timeout)})
		}
		err = cmd.Wait()
	}
	if run != "" {
		_ = os.Remove(run)
	}
	// ExitCode is -1 when the command did not start or was killed by a signal.
	res := actuators.Result{Status: cmd.ProcessState.ExitCode(), Output: out.String()}
	if outFile != nil {
		outFile.Close()
		res.Output = readOutput(outputPath(run), x.o.Limit())
		_ = os.Remove(outputPath(run))
	}
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Unknown outcome: the command may have done part of its work. Final, so that a
		// rollback is never run twice because it was slow.
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("%s: killed after the %s timeout", argv[0], timeout)}
	case ctx.Err() != nil:
		return res, &actuators.Error{Retry: true, Result: res, Err: fmt.Errorf("%s: %w", argv[0], ctx.Err())}
	}
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		retry := false
		for _, c := range x.c.RetryExitCodes {
			retry = retry || c == code
		}
		return res, &actuators.Error{Retry: retry, Result: res, Err: fmt.Errorf("%s: exit status %d", argv[0], code)}
	}
	// Could not start: not found, not executable. Final.
	return res, &actuators.Error{Result: res, Err: fmt.Errorf("run %s: %w", argv[0], err)}
}

// capped keeps the first limit bytes written and counts the rest.
type capped struct {
	mu      sync.Mutex
	limit   int
	buf     bytes.Buffer
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - c.buf.Len()
	if room >= len(p) {
		c.buf.Write(p)
		return len(p), nil
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.ToValidUTF8(c.buf.String(), "\uFFFD")
	if c.dropped > 0 {
		s += fmt.Sprintf("…[%d bytes cut]", c.dropped)
	}
	return s
}
