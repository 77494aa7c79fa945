package graphite

import (
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
)

// Config is a Graphite provider's YAML configuration. http_config's keys are inlined at
// the same level (graphite-web behind a proxy takes basic_auth or authorization).
type Config struct {
	// Address is graphite-web's base URL, e.g. http://graphite:8080 (a path prefix is kept).
	Address string `yaml:"address"`
	// Timeout bounds one HTTP attempt.
	Timeout model.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times a transient failure (network error, 429, 5xx) is tried
	// again; 0 disables retrying.
	Retries int `yaml:"retries"`

	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{
		Timeout:          model.Duration(30 * time.Second),
		Retries:          3,
		HTTPClientConfig: commoncfg.DefaultHTTPClientConfig,
	}
}

// UnmarshalYAML sets the defaults, then decodes the given keys onto them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// Validate reports every invalid field, by its YAML name.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	if u, err := metrics.ParseAddress(c.Address); err != nil {
		es.Add("address", "%v", err)
	} else if u.User != nil {
		es.Add("address", "must not carry credentials; use basic_auth with password_file")
	} else if u.RawQuery != "" {
		es.Add("address", "must not have a query")
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if c.Retries < 0 || c.Retries > 10 {
		es.Add("retries", "must be between 0 and 10")
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}
