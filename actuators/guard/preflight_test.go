package guard

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

// preflightEnv has exec actuators whose preflights meet each other (the first time, they
// pass only when run at once), fail with output, hang past their timeout or need a
// variable.
func preflightEnv(t *testing.T) *env {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "handshake.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	return newEnv(t, envOpts{actuators: fmt.Sprintf(`  meet-a: {type: exec, command: ["/bin/true"], preflight: [%q, %q, %q], preflight_timeout: 5s}
  meet-b: {type: exec, command: ["/bin/true"], preflight: [%q, %q, %q], preflight_timeout: 5s}
  no-history: {type: exec, command: ["/bin/true"], preflight: ["/bin/sh", "-c", "echo deployment/$0 has no previous revision >&2; exit 1", "{{ .Vars.app }}"]}
  hangs: {type: exec, command: ["/bin/true"], preflight: ["/bin/sleep", "30"], preflight_timeout: 300ms}
  needs-ns: {type: exec, command: ["/bin/true"], preflight: ["kubectl", "--namespace={{ .Vars.ns }}", "auth", "can-i", "patch", "deployment"]}`,
		script, a, b, script, b, a)})
}

func preflightCanary(id string) *analysis.Canary {
	return &analysis.Canary{ID: id, Name: "checkout v2.14", Vars: map[string]string{"app": "checkout"},
		Baseline: map[string]string{"track": "stable"}, Canary: map[string]string{"track": "canary"}}
}

func TestPreflight(t *testing.T) {
	e := preflightEnv(t)
	base := *e.cfg.Analyses["golden"]
	with := func(mode string, onFail ...string) *config.Analysis {
		a := base
		a.Preflight, a.OnFail, a.OnPass, a.OnError = mode, onFail, []string{"meet-a", "notify"}, nil
		return &a
	}
	type want struct {
		actuator string
		ok       bool
		err      string
	}
	cases := []struct {
		name    string
		a       *config.Analysis
		c       *analysis.Canary
		want    []want
		refused bool
		field   string
	}{
		{name: "all pass, at once", a: with("warn", "meet-a", "notify", "meet-b"), c: preflightCanary("c1"),
			want: []want{{"meet-a", true, ""}, {"meet-b", true, ""}}},
		{name: "warn: a failed check", a: with("warn", "meet-a", "no-history", "meet-b", "hangs"), c: preflightCanary("c2"),
			want: []want{{"meet-a", true, ""}, {"no-history", false, "/bin/sh: exit status 1"}, {"meet-b", true, ""},
				{"hangs", false, "(preflight_timeout 300ms)"}}},
		{name: "refuse: a failed check", a: with("refuse", "meet-a", "no-history", "meet-b"), c: preflightCanary("c3"), refused: true,
			want: []want{{"meet-a", true, ""}, {"no-history", false, "exit status 1"}, {"meet-b", true, ""}}},
		{name: "a variable only a preflight needs", a: with("warn", "meet-a", "needs-ns", "meet-b"), c: preflightCanary("c4"), field: "vars.ns"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			rs, err := e.g.Preflight(t.Context(), tc.a, tc.c)
			if took := time.Since(start); took > 4*time.Second {
				t.Errorf("took %s: the checks did not run at once", took)
			}
			if tc.field != "" {
				var ie *analysis.InputError
				if !errors.As(err, &ie) || ie.Field != tc.field || !strings.Contains(ie.Msg, "actuator needs-ns's preflight cannot be run") {
					t.Fatalf("got %v, want an input error at %s", err, tc.field)
				}
				return
			}
			var pe *analysis.PreflightError
			if tc.refused != errors.As(err, &pe) || !tc.refused && err != nil {
				t.Fatalf("error %v, refused %v", err, tc.refused)
			}
			if tc.refused {
				rs = pe.Results
				if !strings.Contains(pe.Error(), "preflight of actuator no-history (exec) failed: /bin/sh: exit status 1; output: deployment/checkout has no previous revision") {
					t.Errorf("refusal %q", pe.Error())
				}
			}
			if len(rs) != len(tc.want) {
				t.Fatalf("results %+v, want %d", rs, len(tc.want))
			}
			for i, w := range tc.want {
				r := rs[i]
				if r.Actuator != w.actuator || r.OK != w.ok || !strings.Contains(r.Error, w.err) || r.Type != "exec" {
					t.Errorf("result %d: %+v, want %+v", i, r, w)
				}
			}
			entries, err := e.g.Audit(t.Context(), Query{Kind: KindPreflight, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var mine []Entry
			for _, en := range entries {
				if en.CanaryName == tc.c.Name {
					mine = append(mine, en)
				}
			}
			wantCanary, wantFailed := tc.c.ID, "warn"
			if tc.refused {
				wantCanary, wantFailed = "", "refused"
			}
			got := 0
			for _, en := range mine {
				if en.Canary != wantCanary {
					continue
				}
				got++
				r := rs[len(rs)-got] // newest first
				wantOutcome := "ok"
				if !r.OK {
					wantOutcome = wantFailed
				}
				if en.Actuator != r.Actuator || en.Outcome != wantOutcome || en.Reason != r.Target || en.Service != "checkout" {
					t.Errorf("audit entry %+v for %+v", en, r)
				}
			}
			if got != len(rs) {
				t.Errorf("%d audit entries for canary %q, want %d", got, wantCanary, len(rs))
			}
		})
	}
	t.Run("the client went away", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		before, _ := e.g.Audit(t.Context(), Query{Kind: KindPreflight, Limit: 1000})
		if _, err := e.g.Preflight(ctx, with("warn", "meet-a", "meet-b"), preflightCanary("c5")); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		after, _ := e.g.Audit(t.Context(), Query{Kind: KindPreflight, Limit: 1000})
		if len(after) != len(before) {
			t.Errorf("a cancelled registration left %d audit entries", len(after)-len(before))
		}
	})
}
