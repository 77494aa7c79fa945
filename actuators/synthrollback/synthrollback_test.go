package synthrollback

import (
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

func TestSyntheticRollback(t *testing.T) {
	ev := actuators.Event{Vars: map[string]string{"app": "checkout"}, Canary: map[string]string{"track": "v2-bad"}}
	cases := []struct {
		name    string
		cfg     Config
		err     string
		rolled  bool
		target  string
		invalid string
	}{
		{name: "rolls the cohort back", cfg: Config{App: "{{ .Vars.app }}", Cohort: "{{ .Canary.track }}"}, rolled: true,
			target: "simulated rollback of cohort v2-bad of app checkout (synthetic provider)"},
		{name: "a rollback that cannot run", cfg: Config{App: "{{ .Vars.app }}", Cohort: "{{ .Canary.track }}", Fail: "permission denied"},
			err: "simulated rollback of checkout/v2-bad failed: permission denied"},
		{name: "a missing variable", cfg: Config{App: "{{ .Vars.ns }}", Cohort: "{{ .Canary.track }}"}, err: "app:"},
		{name: "no cohort", cfg: Config{App: "x"}, invalid: "cohort: required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb := synthetic.NewRollbacks()
			a, err := New(rb)(tc.cfg, actuators.Options{Name: "rollback"})
			if tc.invalid != "" {
				if err == nil || !strings.Contains(err.Error(), tc.invalid) {
					t.Fatalf("New: %v, want %q", err, tc.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req, err := a.Render(ev); tc.target != "" && (err != nil || req.Target != tc.target) {
				t.Errorf("render %q (%v), want %q", req.Target, err, tc.target)
			}
			a.now = func() time.Time { return time.Unix(1700000000, 0) }
			_, err = a.Act(t.Context(), ev)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("act: %v, want %q", err, tc.err)
			}
			if when, ok := rb.When("checkout", "v2-bad"); ok != tc.rolled || (ok && when.Unix() != 1700000000) {
				t.Errorf("rolled back %v at %s, want %v", ok, when, tc.rolled)
			}
		})
	}
}
