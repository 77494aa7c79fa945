// Package synthrollback is the synthetic_rollback actuator: a simulated rollback of a
// synthetic provider's cohort, for the demo and for tests of the recovery watch. It
// records the rollback in the daemon's synthetic.Rollbacks, after which that cohort's
// series are drawn without their regressions (unless one survives rollbacks). It never
// touches anything outside the process.
package synthrollback

import (
	"context"
	"fmt"
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// Config is a synthetic_rollback actuator's YAML: which app and cohort it rolls back,
// as templates (`{app: "{{ .Vars.app }}", cohort: "{{ .Canary.track }}"}`, the values
// the synthetic queries' app= and cohort= hold), and optionally an error every attempt
// fails with (a rollback that cannot run: permission denied).
type Config struct {
	App    string `yaml:"app"`
	Cohort string `yaml:"cohort"`
	Fail   string `yaml:"fail,omitempty"`
}

// Validate reports every invalid key by its path.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	for _, k := range []struct{ key, v string }{{"app", c.App}, {"cohort", c.Cohort}} {
		if k.v == "" {
			es.Add(k.key, "required")
		} else if _, err := actuators.ParseTemplate(k.key, k.v); err != nil {
			es.Add(k.key, "%v", err)
		}
	}
	return es
}

// Actuator is a built synthetic_rollback actuator.
type Actuator struct {
	rb          *synthetic.Rollbacks
	app, cohort *actuators.Template
	fail        string
	now         func() time.Time
}

var _ actuators.Actuator = (*Actuator)(nil)

// New returns the kind's constructor over the daemon's rollbacks (nil: a record of its
// own, which no provider reads: check-config's).
func New(rb *synthetic.Rollbacks) func(Config, actuators.Options) (*Actuator, error) {
	if rb == nil {
		rb = synthetic.NewRollbacks()
	}
	return func(c Config, o actuators.Options) (*Actuator, error) {
		if es := c.Validate(); len(es) > 0 {
			return nil, fmt.Errorf("synthetic_rollback %s: %w", o.Name, es)
		}
		a := &Actuator{rb: rb, fail: c.Fail, now: time.Now}
		a.app, _ = actuators.ParseTemplate("app", c.App)
		a.cohort, _ = actuators.ParseTemplate("cohort", c.Cohort)
		return a, nil
	}
}

func (a *Actuator) target(e actuators.Event) (app, cohort string, err error) {
	d := actuators.Data{Event: e}
	if app, err = a.app.Render(d); err != nil {
		return "", "", fmt.Errorf("app: %w", err)
	}
	if cohort, err = a.cohort.Render(d); err != nil {
		return "", "", fmt.Errorf("cohort: %w", err)
	}
	return app, cohort, nil
}

// Render says which cohort the action rolls back.
func (a *Actuator) Render(e actuators.Event) (actuators.Request, error) {
	app, cohort, err := a.target(e)
	if err != nil {
		return actuators.Request{}, err
	}
	return actuators.Request{Target: fmt.Sprintf("simulated rollback of cohort %s of app %s (synthetic provider)", cohort, app)}, nil
}

// Act records the rollback (or fails with the configured error).
func (a *Actuator) Act(_ context.Context, e actuators.Event) (actuators.Result, error) {
	app, cohort, err := a.target(e)
	if err != nil {
		return actuators.Result{}, err
	}
	if a.fail != "" {
		return actuators.Result{Output: a.fail}, fmt.Errorf("simulated rollback of %s/%s failed: %s", app, cohort, a.fail)
	}
	at := a.now()
	a.rb.RollBack(app, cohort, at)
	return actuators.Result{Output: fmt.Sprintf("cohort %s of app %s rolled back at %s", cohort, app, at.UTC().Format(time.RFC3339))}, nil
}
