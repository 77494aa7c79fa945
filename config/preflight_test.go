package config

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
)

// preflightActuator is a test kind with a preflight check.
type preflightActuator struct{ testActuator }

func (preflightActuator) Preflight(context.Context, actuators.Event) (actuators.Result, error) {
	return actuators.Result{}, nil
}

func preflightKinds() Kinds {
	k := testKinds()
	k.Actuators["exec"] = ActuatorKindOf(func(c testURLConfig, o actuators.Options) (preflightActuator, error) {
		return preflightActuator{}, nil
	}, ActuatorDefaults{Attempts: 1})
	return k
}

func TestPreflightConfig(t *testing.T) {
	const withExec = "actuators:\n  rollback: {type: exec, url: \"http://127.0.0.1:1/x\"}\n  notify:"
	cases := []struct {
		name        string
		repl        []string
		want        []string
		wantTimeout time.Duration
		wantMode    string
	}{
		{name: "defaults", repl: []string{"actuators:\n  notify:", withExec}, wantTimeout: 10 * time.Second, wantMode: "warn"},
		{name: "a timeout and refuse", repl: []string{"actuators:\n  notify:", "actuators:\n  rollback: {type: exec, url: \"http://127.0.0.1:1/x\", preflight_timeout: 30s}\n  notify:",
			"on_fail: [notify]", "on_fail: [notify]\n    preflight: refuse"}, wantTimeout: 30 * time.Second, wantMode: "refuse"},
		{name: "timeout over the cap", repl: []string{"actuators:\n  notify:", "actuators:\n  rollback: {type: exec, url: \"http://127.0.0.1:1/x\", preflight_timeout: 45s}\n  notify:"},
			want: []string{"actuators.rollback.preflight_timeout: must be in (0, 30s]: a registration waits for its checks"}},
		{name: "zero timeout", repl: []string{"actuators:\n  notify:", "actuators:\n  rollback: {type: exec, url: \"http://127.0.0.1:1/x\", preflight_timeout: 0s}\n  notify:"},
			want: []string{"actuators.rollback.preflight_timeout: must be in (0, 30s]: a registration waits for its checks"}},
		{name: "a kind without a check", repl: []string{`notify: {type: webhook, url: "http://127.0.0.1:9999/hook"}`, `notify: {type: webhook, url: "http://127.0.0.1:9999/hook", preflight_url: "http://127.0.0.1:9999/ready", preflight_timeout: 5s}`},
			want: []string{
				"actuators.notify.preflight_url: type webhook has no preflight check (the kinds that have one, and their keys, are in actuators/README.md)",
				"actuators.notify.preflight_timeout: type webhook has no preflight check (the kinds that have one, and their keys, are in actuators/README.md)",
				`analyses.golden-signals.on_fail[0]: unknown actuator "notify"`,
			}},
		{name: "unknown mode", repl: []string{"on_fail: [notify]", "on_fail: [notify]\n    preflight: block"},
			want: []string{`analyses.golden-signals.preflight: "block" is not warn or refuse`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := base
			for i := 0; i < len(tc.repl); i += 2 {
				if !strings.Contains(src, tc.repl[i]) {
					t.Fatalf("config has no %q", tc.repl[i])
				}
				src = strings.Replace(src, tc.repl[i], tc.repl[i+1], 1)
			}
			c, err := Parse([]byte(src), preflightKinds())
			if len(tc.want) > 0 {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("want Errors, got %v", err)
				}
				got := make([]string, len(errs))
				for i, e := range errs {
					got[i] = e.Error()
				}
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("errors:\n got: %q\nwant: %q", got, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Actuators["rollback"].PreflightTimeout; got != tc.wantTimeout {
				t.Errorf("preflight_timeout %s, want %s", got, tc.wantTimeout)
			}
			if got := c.Analyses["golden-signals"].Preflight; got != tc.wantMode {
				t.Errorf("preflight %q, want %q", got, tc.wantMode)
			}
		})
	}
	k := preflightKinds()
	k.Actuators["chooses"] = ActuatorKindOf(func(c testURLConfig, o actuators.Options) (actuators.Actuator, error) {
		return testActuator{}, nil
	}, ActuatorDefaults{Attempts: 1})
	if !k.Actuators["exec"].Preflight || k.Actuators["webhook"].Preflight || !k.Actuators["chooses"].Preflight {
		t.Error("a kind's Preflight is not its actuator's method (or, for a kind that builds an interface, true)")
	}
}
