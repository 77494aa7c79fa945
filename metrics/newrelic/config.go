package newrelic

import (
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
)

// The NerdGraph endpoints of New Relic's two regions.
const (
	EndpointUS = "https://api.newrelic.com/graphql"
	EndpointEU = "https://api.eu.newrelic.com/graphql"
)

// Config is a New Relic provider's YAML configuration. http_config's keys are inlined
// (tls_config, proxy_url); the key is a User API key (NRAK-…), sent as API-Key.
type Config struct {
	// AccountID is the account the NRQL runs in.
	AccountID int64 `yaml:"account_id"`
	// Region is us (the default) or eu; Endpoint, when set, replaces the region's
	// NerdGraph URL (a proxy, or a test server).
	Region   string `yaml:"region,omitempty"`
	Endpoint string `yaml:"endpoint,omitempty"`
	// APIKey, APIKeyFile (a file holding the key alone) or APIKeyEnv (default
	// NEW_RELIC_API_KEY) give the key, in that order. The variable is read at start, the
	// file at start and again whenever its modification time or size changes (a rotated
	// secret is used without a restart; one unreadable mid-rotation keeps the last key).
	APIKey     commoncfg.Secret `yaml:"api_key,omitempty"`
	APIKeyFile string           `yaml:"api_key_file,omitempty"`
	APIKeyEnv  string           `yaml:"api_key_env,omitempty"`
	// Timeout bounds one HTTP attempt; NRQL's own timeout is set to it (at most 120 s).
	Timeout model.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times a transient failure (network error, 429, 5xx) is tried
	// again; 0 disables retrying.
	Retries int `yaml:"retries"`

	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{
		Region:           "us",
		APIKeyEnv:        "NEW_RELIC_API_KEY",
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

// endpoint is the NerdGraph URL queries go to.
func (c *Config) endpoint() string {
	switch {
	case c.Endpoint != "":
		return c.Endpoint
	case c.Region == "eu":
		return EndpointEU
	}
	return EndpointUS
}

// Validate reports every invalid field, by its YAML name.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	if c.AccountID <= 0 {
		es.Add("account_id", "is required (a positive account number)")
	}
	if c.Region != "us" && c.Region != "eu" {
		es.Add("region", "must be us or eu, got %q", c.Region)
	}
	if c.Endpoint != "" {
		if u, err := metrics.ParseAddress(c.Endpoint); err != nil {
			es.Add("endpoint", "%v", err)
		} else if u.User != nil || u.RawQuery != "" {
			es.Add("endpoint", "must not carry credentials or a query; the key is api_key_file or api_key_env")
		}
	}
	if c.APIKey != "" && c.APIKeyFile != "" {
		es.Add("api_key", "give api_key or api_key_file, not both")
	}
	if c.APIKey == "" && c.APIKeyFile == "" && c.APIKeyEnv == "" {
		es.Add("api_key_env", "must name an environment variable when api_key and api_key_file are not set")
	}
	if c.Timeout <= 0 || time.Duration(c.Timeout) > 120*time.Second {
		es.Add("timeout", "must be > 0 and at most 120s (NRQL's longest)")
	}
	if c.Retries < 0 || c.Retries > 10 {
		es.Add("retries", "must be between 0 and 10")
	}
	h := c.HTTPClientConfig
	if h.BasicAuth != nil || h.Authorization != nil || h.OAuth2 != nil || h.BearerToken != "" || h.BearerTokenFile != "" {
		es.Add("http_config", "NerdGraph takes the key as API-Key: use api_key_file or api_key_env, not basic_auth, authorization or oauth2")
	}
	if err := h.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}
