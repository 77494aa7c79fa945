package exec

import (
	"github.com/canaryd/canaryd/internal/field"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
)

// Config is an exec actuator's YAML.
type Config struct {
	// Command is the argv, each element a template; no shell is involved, so a value
	// with spaces stays one argument.
	Command []string `yaml:"command"`
	// Env adds variables (values are templates) to canaryd's own environment, or to an
	// empty one when InheritEnv is false. CANARYD_* variables describing the event are
	// always set, and the event is written as JSON on the command's stdin.
	Env        map[string]string `yaml:"env,omitempty"`
	InheritEnv bool              `yaml:"inherit_env"`
	// Dir is the working directory (canaryd's when empty).
	Dir string `yaml:"dir,omitempty"`
	// Preflight is a command (argv, templates, same rules as Command) run when a canary
	// is registered to check, changing nothing, that the command could work: `kubectl auth
	// can-i patch …`, `kubectl rollout history …`. Exit 0 passes. It gets Env, the
	// CANARYD_* variables (CANARYD_ACTION=preflight) and the event on stdin, as Command.
	Preflight []string `yaml:"preflight,omitempty"`
	// Timeout bounds one run; the command and its children are killed past it.
	Timeout model.Duration `yaml:"timeout,omitempty"`
	// RetryExitCodes are the exit codes that mean "try again later"; any other non-zero
	// code is final. Default [75] (EX_TEMPFAIL).
	RetryExitCodes []int `yaml:"retry_exit_codes,omitempty"`
}

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{InheritEnv: true, Timeout: model.Duration(60 * time.Second), RetryExitCodes: []int{75}}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// Validate reports every invalid key by its path in the actuator's entry.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	if len(c.Command) == 0 {
		es.Add("command", "required: the program and its arguments, e.g. [kubectl, rollout, undo, \"deployment/{{ .Vars.app }}\"]")
	}
	for i, a := range c.Command {
		if i == 0 && a == "" {
			es.Add(field.Index("command", i), "the program must not be empty")
			continue
		}
		actuators.CheckTemplate(&es, field.Index("command", i), a)
	}
	for i, a := range c.Preflight {
		if i == 0 && a == "" {
			es.Add(field.Index("preflight", i), "the program must not be empty")
			continue
		}
		actuators.CheckTemplate(&es, field.Index("preflight", i), a)
	}
	for _, k := range sortedKeys(c.Env) {
		actuators.CheckEnvName(&es, "env."+k, k)
		actuators.CheckTemplate(&es, "env."+k, c.Env[k])
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	for i, code := range c.RetryExitCodes {
		if code < 1 || code > 255 {
			es.Add(field.Index("retry_exit_codes", i), "must be in [1, 255]")
		}
	}
	return es
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
