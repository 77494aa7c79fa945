package pagerduty

import (
	"github.com/canaryd/canaryd/internal/field"
	"slices"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
)

// DefaultURL is PagerDuty's Events API v2 endpoint; DefaultChangeURL its Change Events
// endpoint.
const (
	DefaultURL       = "https://events.pagerduty.com/v2/enqueue"
	DefaultChangeURL = "https://events.pagerduty.com/v2/change/enqueue"
)

// Modes: what a pagerduty actuator sends.
const (
	// ModeAlert triggers an alert (an incident, which pages), resolved when a later
	// canary of the service passes.
	ModeAlert = "alert"
	// ModeChange sends a change event: shown on the service's activity and on its
	// incidents' "recent changes", never paging ("canary of checkout v2.14 started").
	ModeChange = "change"
)

// DefaultAbilitiesURL is the REST API's "list abilities" call.
const DefaultAbilitiesURL = "https://api.pagerduty.com/abilities"

// Config is a pagerduty actuator's YAML.
type Config struct {
	// Mode is alert (the default) or change.
	Mode string `yaml:"mode,omitempty"`
	// URL is the endpoint: DefaultURL for alerts, DefaultChangeURL for change events,
	// when empty.
	URL string `yaml:"url,omitempty"`
	// RoutingKeyEnv names the environment variable holding the integration's routing key.
	RoutingKeyEnv string `yaml:"routing_key_env"`
	// Severity is critical, error, warning or info.
	Severity string `yaml:"severity,omitempty"`
	// Summary, Source, Component, Group and Class are templates for the payload's fields.
	Summary   string `yaml:"summary,omitempty"`
	Source    string `yaml:"source,omitempty"`
	Component string `yaml:"component,omitempty"`
	Group     string `yaml:"group,omitempty"`
	Class     string `yaml:"class,omitempty"`
	// PreflightTokenEnv, when set, names the environment variable holding a PagerDuty
	// REST API key, checked when a canary is registered with GET /abilities (the REST
	// API's documented call that any valid key may make). The Events API has no call
	// that checks a routing key without sending an event.
	PreflightTokenEnv string `yaml:"preflight_token_env,omitempty"`
	// PreflightURL is the REST API's abilities address (DefaultAbilitiesURL).
	PreflightURL string                     `yaml:"preflight_url,omitempty"`
	Timeout      model.Duration             `yaml:"timeout,omitempty"`
	HTTPConfig   commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`

	// alertOnly are the alert-only keys the file set, which a change event has no place for.
	alertOnly []string
}

// alertKeys are the keys only an alert has.
var alertKeys = []string{"severity", "component", "group", "class"}

// DefaultChangeSummary is a change event's summary when summary is not set.
const DefaultChangeSummary = `Canary {{ .Name }} of {{ .Service }} {{ if eq .Trigger "on_start" }}started{{ else }}{{ .Status }}{{ if .Score }} (score {{ .ScoreText }}){{ end }}{{ end }}`

// Endpoint is where events go: URL, or the mode's default.
func (c *Config) Endpoint() string {
	switch {
	case c.URL != "":
		return c.URL
	case c.Mode == ModeChange:
		return DefaultChangeURL
	}
	return DefaultURL
}

var severities = []string{"critical", "error", "warning", "info"}

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{
		Mode:         ModeAlert,
		PreflightURL: DefaultAbilitiesURL,
		Severity:     "critical",
		Summary:      `Canary {{ .Name }} of {{ .Service }} {{ .Status }}: {{ .Reason }}`,
		Source:       "canaryd",
		Component:    "{{ .Service }}",
		Group:        "{{ .Analysis }}",
		Class:        "canary",
		Timeout:      model.Duration(10 * time.Second),
		HTTPConfig:   commoncfg.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML fills the defaults, then decodes the file's values onto them.
// A change event gets its own default summary, and remembers which alert-only keys the
// file set (Validate refuses them).
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	var keys map[string]any
	if err := unmarshal(&keys); err != nil {
		return err
	}
	for _, k := range alertKeys {
		if _, ok := keys[k]; ok {
			c.alertOnly = append(c.alertOnly, k)
		}
	}
	if _, ok := keys["summary"]; !ok && c.Mode == ModeChange {
		c.Summary = DefaultChangeSummary
	}
	return nil
}

// Validate reports every invalid key by its path in the actuator's entry.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	switch c.Mode {
	case ModeAlert:
	case ModeChange:
		for _, k := range c.alertOnly {
			es.Add(k, "only for mode %s: a change event has no %s", ModeAlert, k)
		}
	default:
		es.Add("mode", "%q is not %s or %s", c.Mode, ModeAlert, ModeChange)
	}
	if err := actuators.CheckRenderedURL(c.Endpoint()); err != nil {
		es.Add("url", "%v", err)
	}
	actuators.CheckEnvName(&es, "routing_key_env", c.RoutingKeyEnv)
	if c.PreflightTokenEnv != "" {
		actuators.CheckEnvName(&es, "preflight_token_env", c.PreflightTokenEnv)
	}
	if err := actuators.CheckRenderedURL(c.PreflightURL); err != nil {
		es.Add("preflight_url", "%v", err)
	}
	if !slices.Contains(severities, c.Severity) {
		es.Add("severity", "%q is not one of %v", c.Severity, severities)
	}
	for _, f := range []struct{ key, text string }{
		{"summary", c.Summary}, {"source", c.Source}, {"component", c.Component}, {"group", c.Group}, {"class", c.Class},
	} {
		actuators.CheckTemplate(&es, f.key, f.text)
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if err := c.HTTPConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}
