package exec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

func preflightEvent() actuators.Event {
	return actuators.PreflightEvent(event())
}

// A preflight runs with the command's environment and templating, changes nothing
// (no marker, no state), and reports its exit code, output and what it ran.
func TestPreflight(t *testing.T) {
	cases := []struct {
		name       string
		env        map[string]string
		inherit    bool
		wantErr    string
		wantStatus int
		wantOut    []string
	}{
		{name: "passes", env: map[string]string{"KUBE_NS": "{{ .Vars.ns }}"}, inherit: true, wantOut: []string{
			"arg=auth", "arg=can-i", "arg=patch", "arg=deployment/web", "action=preflight", "key=c1/preflight/rollback", "ns=prod team", "inherited=yes"}},
		{name: "fails", env: map[string]string{"PREFLIGHT_EXIT": "3"}, inherit: true, wantErr: "exit status 3", wantStatus: 3,
			wantOut: []string{"arg=deployment/web", "action=preflight"}},
		{name: "without canaryd's environment", env: map[string]string{"KUBE_NS": "x"}, inherit: false, wantOut: []string{"ns=x", "inherited=unset"}},
	}
	t.Setenv("CANARYD_TEST_INHERITED", "yes")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			c := DefaultConfig()
			c.Command = []string{"/bin/false"}
			c.Preflight = []string{script(t, "preflight.sh"), "auth", "can-i", "patch", "deployment/{{ .Vars.app }}"}
			c.Env, c.InheritEnv = tc.env, tc.inherit
			x, err := New(c, actuators.Options{Name: "rollback", StateDir: state})
			if err != nil {
				t.Fatal(err)
			}
			res, err := x.Preflight(t.Context(), preflightEvent())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q\n%s", err, tc.wantErr, res.Output)
			}
			if res.Status != tc.wantStatus {
				t.Errorf("status %d, want %d", res.Status, tc.wantStatus)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(res.Output, w+"\n") {
					t.Errorf("output lacks %q:\n%s", w, res.Output)
				}
			}
			if want := script(t, "preflight.sh") + " auth can-i patch deployment/web"; res.Target != want {
				t.Errorf("target %q, want %q", res.Target, want)
			}
			if ents, _ := os.ReadDir(state); len(ents) != 0 {
				t.Errorf("a preflight left state: %v", ents)
			}
		})
	}
}

// A preflight that hangs is killed with its children at ctx's deadline (the guard's
// preflight_timeout), and one that prints a lot is cut to the output limit.
func TestPreflightTimeoutAndOutputCap(t *testing.T) {
	t.Run("hangs past its timeout", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "child.pid")
		c := DefaultConfig()
		c.Command = []string{"/bin/true"}
		c.Preflight = []string{script(t, "hang.sh"), pidFile}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, err := build(t, c, 0).Preflight(ctx, preflightEvent())
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("took %s, want about 300ms", took)
		}
		if err == nil || !strings.Contains(err.Error(), "killed after") || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want a kill at the deadline, got %v", err)
		}
		if !strings.Contains(res.Output, "started child") || res.Status != -1 {
			t.Errorf("result %+v", res)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		waitGone(t, strings.TrimSpace(string(b)))
	})
	t.Run("prints a lot", func(t *testing.T) {
		c := DefaultConfig()
		c.Command = []string{"/bin/true"}
		c.Preflight = []string{script(t, "loud.sh")}
		res, err := build(t, c, 1000).Preflight(t.Context(), preflightEvent())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(res.Output, "line 0: the quick") || !strings.Contains(res.Output, "bytes cut]") || len(res.Output) > 1100 {
			t.Errorf("output not capped at 1000 bytes: %d bytes, ends %q", len(res.Output), res.Output[max(0, len(res.Output)-60):])
		}
	})
}

// The preflight follows the command's safety rules: a value's leading dash is refused
// (before anything runs), a missing variable is a render error, and an exec without a
// preflight says so.
func TestPreflightRenderErrors(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	cases := []struct {
		name      string
		preflight []string
		vars      map[string]string
		want      string
	}{
		{name: "leading dash from a value", preflight: []string{"/bin/touch", marker, "{{ .Vars.app }}"}, vars: map[string]string{"app": "--kubeconfig=/tmp/evil"},
			want: `preflight[2]: rendered "--kubeconfig=/tmp/evil" starts with "-"`},
		{name: "missing variable", preflight: []string{"/bin/touch", marker, "{{ .Vars.ns }}"}, vars: map[string]string{"app": "web"},
			want: `map has no entry for key "ns"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Command = []string{"/bin/true"}
			c.Preflight = tc.preflight
			e := preflightEvent()
			e.Vars = tc.vars
			_, err := build(t, c, 0).Preflight(t.Context(), e)
			var re *actuators.PreflightRenderError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a render error with %q, got %v", tc.want, err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the preflight ran")
			}
		})
	}
	c := DefaultConfig()
	c.Command = []string{"/bin/true"}
	if _, err := build(t, c, 0).Preflight(t.Context(), preflightEvent()); !errors.Is(err, actuators.ErrNoPreflight) {
		t.Errorf("no preflight: got %v, want ErrNoPreflight", err)
	}
}

func TestPreflightConfig(t *testing.T) {
	c := DefaultConfig()
	c.Command = []string{"/bin/true"}
	c.Preflight = []string{"", "{{ .Sevrice }}"}
	es := c.Validate()
	got := es.Error()
	for _, w := range []string{"preflight[0]: the program must not be empty", "preflight[1]: .Sevrice is not a field of the event"} {
		if !strings.Contains(got, w) {
			t.Errorf("errors lack %q:\n%s", w, got)
		}
	}
}

// waitGone waits until pid is not running (gone, or a zombie for its reaper).
func waitGone(t *testing.T, pid string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		fields := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		if len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %s still running: %s", pid, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
