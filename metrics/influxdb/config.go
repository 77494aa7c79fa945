package influxdb

import (
	"strings"
	"unicode"

	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/httpconf"
)

// Config is an InfluxDB 1.x provider's YAML configuration. http_config's keys are inlined
// at the same level; InfluxDB 1.x takes a user's credentials as basic_auth (with
// password_file), or a JWT as authorization: {type: Bearer, credentials_file: …}.
type Config struct {
	// Address is InfluxDB's base URL, e.g. http://127.0.0.1:8086 (a path prefix is kept).
	Address string `yaml:"address"`
	// Database is the database queries run in (the db parameter).
	Database string `yaml:"database"`
	// RetentionPolicy, when set, is the rp parameter: the retention policy of
	// measurements the query does not qualify.
	RetentionPolicy string `yaml:"retention_policy,omitempty"`
	// HTTP is timeout, retries (of a network error or 5xx) and http_config's keys.
	httpconf.HTTP `yaml:",inline"`
}

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{HTTP: httpconf.Default()}
}

// UnmarshalYAML sets the defaults, then decodes the given keys onto them; config (and
// New) then call Validate.
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
		// Not echoed: InfluxDB 1.x also takes u= and p= parameters, which would reach logs.
		es.Add("address", "must not have a query; use basic_auth with password_file for credentials")
	}
	if c.Database == "" {
		es.Add("database", "is required")
	}
	for _, f := range []struct{ name, v string }{{"database", c.Database}, {"retention_policy", c.RetentionPolicy}} {
		if strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			es.Add(f.name, "must not contain control characters")
		}
	}
	c.Check(&es)
	return es
}
