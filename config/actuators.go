package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/actuators"
)

// Actuation is the `actuation:` block: the safety layer's settings and the defaults of
// every actuator's own safety keys.
type Actuation struct {
	// DryRun records every action as "would have fired" and fires nothing.
	DryRun bool `yaml:"dry_run"`
	// ServiceVar names the canary variable that says which service a canary is of: the
	// breaker, the cooldown and PagerDuty's resolve work per service. It is looked up in
	// vars, then in the canary cohort, then in the baseline; the canary's name otherwise.
	ServiceVar string `yaml:"service_var"`
	// Breaker bounds how many times one actuator acts on one service in a window.
	Breaker Breaker `yaml:"breaker"`
	// Cooldown: after an action on a service, another canary's actions on it are
	// suppressed for this long (two canaries of one deploy must not undo twice).
	Cooldown model.Duration `yaml:"cooldown"`
	// ApprovalTimeout: actions held for approval expire after this long.
	ApprovalTimeout model.Duration `yaml:"approval_timeout"`
	// RecoverWindow: at start, a canary that ended without its actions planned (canaryd
	// died in between) is actuated if it ended less than this long ago; older ones are
	// recorded as skipped, so an upgrade never replays history.
	RecoverWindow model.Duration `yaml:"recover_window"`
	// Workers bounds how many actions fire at once.
	Workers int `yaml:"workers"`
	// Backoff is the wait before the first retry of a retryable failure; it doubles at
	// each attempt, up to a minute.
	Backoff model.Duration `yaml:"backoff"`
	// ExternalURL is canaryd's address as people reach it, for links in messages
	// (default http:// and server.listen).
	ExternalURL string `yaml:"external_url"`
	// OutputLimit bounds the response body or command output kept per attempt, in bytes.
	OutputLimit int `yaml:"output_limit"`
	// AuditRetention is how long audit entries are kept.
	AuditRetention model.Duration `yaml:"audit_retention"`
}

// Breaker is a circuit breaker's limit: at most Max actions in Window (Max 0: no limit).
type Breaker struct {
	Max    int            `yaml:"max"`
	Window model.Duration `yaml:"window"`
}

// DefaultActuation is the `actuation:` block when the file leaves it out.
func DefaultActuation() Actuation {
	return Actuation{
		ServiceVar:      "app",
		Breaker:         Breaker{Max: 3, Window: model.Duration(time.Hour)},
		Cooldown:        model.Duration(10 * time.Minute),
		ApprovalTimeout: model.Duration(time.Hour),
		RecoverWindow:   model.Duration(time.Hour),
		Workers:         4,
		Backoff:         model.Duration(2 * time.Second),
		OutputLimit:     actuators.DefaultOutputLimit,
		AuditRetention:  model.Duration(90 * 24 * time.Hour),
	}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
func (a *Actuation) UnmarshalYAML(unmarshal func(any) error) error {
	*a = DefaultActuation()
	type plain Actuation
	return unmarshal((*plain)(a))
}

// UnmarshalYAML keeps the default window of a breaker that sets only max.
func (b *Breaker) UnmarshalYAML(unmarshal func(any) error) error {
	*b = Breaker{Max: 3, Window: model.Duration(time.Hour)}
	type plain Breaker
	return unmarshal((*plain)(b))
}

func (a *Actuation) validate(path string, errs *Errors) {
	if !varKeyOK(a.ServiceVar) {
		errs.Add(join(path, "service_var"), "%q is not a variable name", a.ServiceVar)
	}
	a.Breaker.validate(join(path, "breaker"), errs)
	if a.Cooldown < 0 {
		errs.Add(join(path, "cooldown"), "must be >= 0")
	}
	if a.ApprovalTimeout <= 0 {
		errs.Add(join(path, "approval_timeout"), "must be > 0")
	}
	if a.RecoverWindow < 0 {
		errs.Add(join(path, "recover_window"), "must be >= 0")
	}
	if a.Workers < 1 || a.Workers > 64 {
		errs.Add(join(path, "workers"), "must be in [1, 64]")
	}
	if a.Backoff <= 0 || time.Duration(a.Backoff) > time.Minute {
		errs.Add(join(path, "backoff"), "must be in (0, 1m]")
	}
	if a.ExternalURL != "" {
		if u, err := url.Parse(a.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.Add(join(path, "external_url"), "must be an http or https URL with a host")
		}
	}
	if a.OutputLimit < 256 || a.OutputLimit > 1<<20 {
		errs.Add(join(path, "output_limit"), "must be in [256, 1048576] bytes")
	}
	if a.AuditRetention < model.Duration(24*time.Hour) {
		errs.Add(join(path, "audit_retention"), "must be >= 1d")
	}
}

func (b Breaker) validate(path string, errs *Errors) {
	if b.Max < 0 {
		errs.Add(join(path, "max"), "must be >= 0 (0 disables the breaker)")
	}
	if b.Window <= 0 {
		errs.Add(join(path, "window"), "must be > 0")
	}
}

func varKeyOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		if r != '_' && !(r >= 'A' && r <= 'Z') && !(r >= 'a' && r <= 'z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Resume says what happens to an action found mid-flight after a restart.
const (
	// ResumeRetry fires it again with the same idempotency key (the default).
	ResumeRetry = "retry"
	// ResumeSkip records it as abandoned, outcome unknown, for a human to check: for
	// commands that are not safe to run twice.
	ResumeSkip = "skip"
)

// actuatorCommonYAML holds the safety keys every actuator entry may set besides its
// kind's own; they are taken out before the kind decodes the rest strictly.
type actuatorCommonYAML struct {
	Notification *bool          `yaml:"notification"`
	Breaker      *Breaker       `yaml:"breaker"`
	Cooldown     model.Duration `yaml:"cooldown"`
	Attempts     int            `yaml:"attempts"`
	Resume       string         `yaml:"resume"`
	// PreflightTimeout bounds the kind's preflight check.
	PreflightTimeout model.Duration `yaml:"preflight_timeout"`
}

var commonKeys = []string{"notification", "breaker", "cooldown", "attempts", "resume", "preflight_timeout"}

// decodeActuator decodes an entry's safety keys and its kind's config into a.
func decodeActuator(a *Actuator, path string, k ActuatorKind, defaults *Actuation, errs *Errors) bool {
	n := len(*errs)
	var common, rest yaml.MapSlice
	for _, it := range a.Raw {
		if s, ok := it.Key.(string); ok && slices.Contains(commonKeys, s) {
			common = append(common, it)
			continue
		}
		rest = append(rest, it)
	}
	if !k.Preflight {
		// A kind without a check: a preflight key is a mistake to name, not a typo of
		// another key.
		for _, it := range a.Raw {
			if s, ok := it.Key.(string); ok && strings.HasPrefix(s, "preflight") {
				errs.Add(join(path, s), "type %s has no preflight check (the kinds that have one, and their keys, are in actuators/README.md)", a.Type)
			}
		}
		if len(*errs) > n {
			return false
		}
	}
	var cw actuatorCommonYAML
	if len(common) > 0 && !decodeAt(common, &cw, path, errs) {
		return false
	}
	a.Notification = k.Defaults.Notification
	if cw.Notification != nil {
		a.Notification = *cw.Notification
	}
	// Notifications get no breaker and no cooldown unless their entry sets them.
	if !a.Notification {
		a.Breaker, a.Cooldown = defaults.Breaker, time.Duration(defaults.Cooldown)
	}
	if cw.Breaker != nil {
		a.Breaker = *cw.Breaker
		a.Breaker.validate(join(path, "breaker"), errs)
	}
	if _, set := lookup(common, "cooldown"); set {
		a.Cooldown = time.Duration(cw.Cooldown)
		if a.Cooldown < 0 {
			errs.Add(join(path, "cooldown"), "must be >= 0")
		}
	}
	a.Attempts = k.Defaults.Attempts
	if _, set := lookup(common, "attempts"); set {
		a.Attempts = cw.Attempts
		if a.Attempts < 1 || a.Attempts > 10 {
			errs.Add(join(path, "attempts"), "must be in [1, 10]")
		}
	}
	a.PreflightTimeout = actuators.DefaultPreflightTimeout
	if _, set := lookup(common, "preflight_timeout"); set {
		a.PreflightTimeout = time.Duration(cw.PreflightTimeout)
		if a.PreflightTimeout <= 0 || a.PreflightTimeout > actuators.MaxPreflightTimeout {
			errs.Add(join(path, "preflight_timeout"), "must be in (0, %s]: a registration waits for its checks", model.Duration(actuators.MaxPreflightTimeout))
		}
	}
	a.Resume = ResumeRetry
	if cw.Resume != "" {
		a.Resume = cw.Resume
		if a.Resume != ResumeRetry && a.Resume != ResumeSkip {
			errs.Add(join(path, "resume"), "%q is not %s or %s", a.Resume, ResumeRetry, ResumeSkip)
		}
	}
	b := []byte("{}")
	if len(rest) > 0 {
		var err error
		if b, err = yaml.Marshal(rest); err != nil {
			errs.Add(path, "re-encode: %v", err)
			return false
		}
	}
	cfg, ok := k.decode(b, path, errs)
	if !ok {
		return false
	}
	a.Config = cfg
	a.kind = k
	full := append(yaml.MapSlice{{Key: "type", Value: a.Type}}, a.Raw...)
	a.Source, _ = yaml.Marshal(full)
	return len(*errs) == n
}

func lookup(ms yaml.MapSlice, key string) (any, bool) {
	for _, it := range ms {
		if it.Key == key {
			return it.Value, true
		}
	}
	return nil, false
}

// Build makes the actuator this entry describes, reading its secrets from the
// environment: a missing secret is an error here (serve, reload), not in check-config.
func (a *Actuator) Build(o actuators.Options) (actuators.Actuator, error) {
	if a.kind.build == nil || a.Config == nil {
		return nil, fmt.Errorf("actuator %s: type %q: %w", a.Name, a.Type, errNoKind)
	}
	o.Name = a.Name
	act, err := a.kind.build(a.Config, o)
	if err != nil {
		return nil, fmt.Errorf("actuator %s: %w", a.Name, err)
	}
	return act, nil
}

// Unchanged reports whether this actuator's entry is the same as other's, so a reload
// can keep the actuator already built.
func (a *Actuator) Unchanged(other *Actuator) bool {
	return a != nil && other != nil && a.Type == other.Type && slices.Equal(a.Source, other.Source)
}
