package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strings"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// Preflight runs the preflight command once for e, with the command's environment and
// safety rules, and reports exit 0 as passing. It keeps no state: no completion marker,
// no pid file (a preflight cut by a crash is simply not recorded). ctx bounds it: past
// its deadline the command and its children are killed.
func (x *Exec) Preflight(ctx context.Context, e actuators.Event) (actuators.Result, error) {
	if len(x.preflight) == 0 {
		return actuators.Result{}, actuators.ErrNoPreflight
	}
	argv, env, err := x.renderArgv("preflight", x.preflight, e)
	if err != nil {
		return actuators.Result{}, actuators.PreflightRender(err)
	}
	stdin, err := json.Marshal(e)
	if err != nil {
		return actuators.Result{}, fmt.Errorf("encode event: %w", err)
	}
	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = x.c.Dir
	if x.c.InheritEnv {
		cmd.Env = os.Environ()
	}
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Env = append(cmd.Env, eventEnv(e)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out := &capped{limit: x.o.Limit()}
	cmd.Stdout, cmd.Stderr = out, out
	killGroup(cmd)
	// A child that keeps the output pipe open past the kill must not hold the
	// registration.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err = cmd.Run()
	res := actuators.Result{Status: cmd.ProcessState.ExitCode(), Output: out.String(), Target: strings.Join(argv, " ")}
	var ee *osexec.ExitError
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("%s: killed after %s: %w", argv[0], time.Since(start).Round(time.Millisecond), ctx.Err())}
	case errors.As(err, &ee):
		return res, &actuators.Error{Result: res, Err: fmt.Errorf("%s: exit status %d", argv[0], ee.ExitCode())}
	}
	return res, &actuators.Error{Result: res, Err: fmt.Errorf("run %s: %w", argv[0], err)}
}
