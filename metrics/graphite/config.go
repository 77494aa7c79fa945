package graphite

import (
	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/httpconf"
)

// Config is a Graphite provider's YAML configuration. http_config's keys are inlined at
// the same level (graphite-web behind a proxy takes basic_auth or authorization).
type Config struct {
	// Address is graphite-web's base URL, e.g. http://graphite:8080 (a path prefix is kept).
	Address string `yaml:"address"`
	// HTTP is timeout, retries (of a network error, 429 or 5xx) and http_config's keys.
	httpconf.HTTP `yaml:",inline"`
}

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{HTTP: httpconf.Default()}
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
	c.Check(&es)
	return es
}
