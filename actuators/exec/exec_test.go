package exec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/testutil"
)

func event() actuators.Event {
	e := testutil.Event("rollback")
	e.Reason = "bad"
	e.Vars = map[string]string{"app": "web", "ns": "prod team", "evil": "$(touch pwned)"}
	return e
}

func script(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t *testing.T, c Config, limit int) *Exec {
	t.Helper()
	x, err := New(c, actuators.Options{Name: "rollback", OutputLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestExecArgvNoShell(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig()
	c.Command = []string{script(t, "echo.sh"), "deployment/{{ .Vars.app }}", "{{ .Vars.ns }}", "{{ .Vars.evil }}"}
	c.Env = map[string]string{"KUBE_NS": "{{ .Vars.ns }}"}
	c.Dir = dir
	x := build(t, c, 0)
	res, err := x.Act(t.Context(), event())
	if err != nil {
		t.Fatalf("act: %v\n%s", err, res.Output)
	}
	lines := strings.Split(strings.TrimSpace(res.Output), "\n")
	want := []string{"arg=deployment/web", "arg=prod team", "arg=$(touch pwned)", "key=c1/on_fail/rollback", "service=web", "ns=prod team"}
	for i, w := range want {
		if i >= len(lines) || lines[i] != w {
			t.Fatalf("output line %d: got %q, want %q\n%s", i, lines[i], w, res.Output)
		}
	}
	var ev actuators.Event
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[len(want)], "stdin=")), &ev); err != nil || ev.Key != "c1/on_fail/rollback" || ev.Vars["app"] != "web" {
		t.Errorf("event on stdin: %q %v", lines[len(want)], err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a variable was run by a shell")
	}
	if res.Status != 0 {
		t.Errorf("status %d", res.Status)
	}
	req, err := x.Render(event())
	if err != nil || len(req.Argv) != 4 || req.Argv[2] != "prod team" || req.Env["KUBE_NS"] != "prod team" {
		t.Errorf("render: %+v %v", req, err)
	}
}

func TestExecExitCodes(t *testing.T) {
	cases := []struct {
		name   string
		code   int
		ok     bool
		retry  bool
		output string
	}{
		{name: "0 succeeds", code: 0, ok: true, output: "exiting with 0"},
		{name: "non-zero is final", code: 3, output: "exiting with 3"},
		{name: "75 retries", code: 75, retry: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Command = []string{script(t, "exit.sh"), strconv.Itoa(tc.code)}
			res, err := build(t, c, 0).Act(t.Context(), event())
			if (err == nil) != tc.ok || actuators.IsRetryable(err) != tc.retry || res.Status != tc.code {
				t.Errorf("err %v retry %v status %d", err, actuators.IsRetryable(err), res.Status)
			}
			if tc.output != "" && strings.TrimSpace(res.Output) != tc.output {
				t.Errorf("output %q (stderr is captured)", res.Output)
			}
		})
	}
	c := DefaultConfig()
	c.Command = []string{filepath.Join(t.TempDir(), "no-such-program")}
	if _, err := build(t, c, 0).Act(t.Context(), event()); err == nil || actuators.IsRetryable(err) {
		t.Errorf("missing program: want a final error, got %v", err)
	}
}

// A command past its timeout is killed with its children, and the attempt is final: a
// slow rollback is never run twice.
func TestExecTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	c := DefaultConfig()
	c.Command = []string{script(t, "hang.sh"), pidFile}
	c.Timeout = model.Duration(300 * time.Millisecond)
	res, err := build(t, c, 0).Act(t.Context(), event())
	if err == nil || actuators.IsRetryable(err) || !strings.Contains(err.Error(), "killed after the 300ms timeout") {
		t.Fatalf("want a final timeout error, got %v", err)
	}
	if !strings.Contains(res.Output, "started child") || res.Status != -1 {
		t.Errorf("result %+v", res)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	// The child is gone or a zombie waiting for its reaper: not running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			break
		}
		fields := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		if len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %s still running: %s", pid, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExecOutputCapped(t *testing.T) {
	c := DefaultConfig()
	c.Command = []string{script(t, "loud.sh")}
	res, err := build(t, c, 1024).Act(t.Context(), event())
	if err != nil {
		t.Fatal(err)
	}
	head, tail, ok := strings.Cut(res.Output, "…[")
	if !ok || len(head) != 1024 || !strings.HasSuffix(tail, " bytes cut]") {
		t.Errorf("output not capped: %d bytes, tail %q", len(res.Output), tail)
	}
}

func TestExecConfig(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no command", func(c *Config) { c.Command = nil }, "command: required"},
		{"empty program", func(c *Config) { c.Command = []string{"", "x"} }, "command[0]: the program must not be empty"},
		{"bad arg template", func(c *Config) { c.Command = []string{"kubectl", "{{ .Vars.app"} }, "command[1]: parse template"},
		{"bad env name", func(c *Config) { c.Env = map[string]string{"1BAD": "x"} }, `env.1BAD: "1BAD" is not an environment variable name`},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout: must be > 0"},
		{"bad retry code", func(c *Config) { c.RetryExitCodes = []int{0} }, "retry_exit_codes[0]: must be in [1, 255]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Command = []string{"true"}
			tc.mod(&c)
			if got := c.Validate().Error(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want prefix %q", got, tc.want)
			}
		})
	}
}

// A value that starts with "-" never becomes an option of its own: the argv element is
// refused unless the config wrote the dash itself or the value comes after a literal "--".
func TestExecRefusesOptionFromValue(t *testing.T) {
	const evil = "--kubeconfig=/tmp/evil"
	cases := []struct {
		name    string
		command []string
		want    []string // argv[1:], nil when refused
		field   string
	}{
		{name: "value as its own argument", command: []string{"{{ .Vars.app }}"}, field: "command[1]"},
		{name: "shipped argo preset shape", command: []string{"argo", "rollouts", "abort", "{{ .Vars.app }}", "--namespace", "prod"}, field: "command[4]"},
		{name: "value after a flag's separate value slot", command: []string{"--namespace", "{{ .Vars.app }}"}, field: "command[2]"},
		{name: "trimmed action still a value", command: []string{"{{- .Vars.app -}}"}, field: "command[1]"},
		{name: "conditional dash is a template value", command: []string{`{{ if .Vars.app }}-x{{ end }}`}, field: "command[1]"},
		{name: "flag=value keeps it one value", command: []string{"--namespace={{ .Vars.app }}"}, want: []string{"--namespace=" + evil}},
		{name: "after a literal --", command: []string{"--namespace=prod", "--", "{{ .Vars.app }}"}, want: []string{"--namespace=prod", "--", evil}},
		{name: "inside a path", command: []string{"deployment/{{ .Vars.app }}"}, want: []string{"deployment/" + evil}},
		{name: "literal options", command: []string{"--wait", "-n", "prod"}, want: []string{"--wait", "-n", "prod"}},
		{name: "a templated -- does not end the options", command: []string{"{{ .Vars.dd }}", "{{ .Vars.app }}"}, field: "command[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Command = append([]string{script(t, "echo.sh")}, tc.command...)
			x := build(t, c, 0)
			e := event()
			e.Vars = map[string]string{"app": evil, "dd": "--"}
			req, rerr := x.Render(e)
			res, aerr := x.Act(t.Context(), e)
			if tc.want == nil {
				for _, err := range []error{rerr, aerr} {
					var oe *actuators.OptionError
					if !errors.As(err, &oe) || oe.Field != tc.field || actuators.IsRetryable(err) {
						t.Fatalf("want an OptionError on %s, got %v", tc.field, err)
					}
				}
				if res.Output != "" {
					t.Errorf("the command ran: %q", res.Output)
				}
				return
			}
			if rerr != nil || aerr != nil {
				t.Fatalf("render %v, act %v", rerr, aerr)
			}
			if got := req.Argv[1:]; !slices.Equal(got, tc.want) {
				t.Errorf("argv %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(res.Output, "arg="+w+"\n") {
					t.Errorf("arg %d %q not passed as one argument:\n%s", i, w, res.Output)
				}
			}
		})
	}
}
