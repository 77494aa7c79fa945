package pagerduty

import (
	"github.com/canaryd/canaryd/internal/field"
	"slices"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
)

// DefaultURL is PagerDuty's Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Config is a pagerduty actuator's YAML.
type Config struct {
	// URL is the Events API v2 enqueue endpoint (DefaultURL).
	URL string `yaml:"url,omitempty"`
	// RoutingKeyEnv names the environment variable holding the integration's routing key.
	RoutingKeyEnv string `yaml:"routing_key_env"`
	// Severity is critical, error, warning or info.
	Severity string `yaml:"severity,omitempty"`
	// Summary, Source, Component, Group and Class are templates for the payload's fields.
	Summary    string                     `yaml:"summary,omitempty"`
	Source     string                     `yaml:"source,omitempty"`
	Component  string                     `yaml:"component,omitempty"`
	Group      string                     `yaml:"group,omitempty"`
	Class      string                     `yaml:"class,omitempty"`
	Timeout    model.Duration             `yaml:"timeout,omitempty"`
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`
}

var severities = []string{"critical", "error", "warning", "info"}

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{
		URL:        DefaultURL,
		Severity:   "critical",
		Summary:    `Canary {{ .Name }} of {{ .Service }} {{ .Status }}: {{ .Reason }}`,
		Source:     "canaryd",
		Component:  "{{ .Service }}",
		Group:      "{{ .Analysis }}",
		Class:      "canary",
		Timeout:    model.Duration(10 * time.Second),
		HTTPConfig: commoncfg.DefaultHTTPClientConfig,
	}
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
	if err := actuators.CheckRenderedURL(c.URL); err != nil {
		es.Add("url", "%v", err)
	}
	actuators.CheckEnvName(&es, "routing_key_env", c.RoutingKeyEnv)
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
