package prometheus

import (
	"github.com/canaryd/canaryd/internal/field"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/metrics"
)

// Config is a Prometheus provider's YAML configuration. http_config's keys (bearer token,
// basic auth, tls_config, proxy_url, http_headers, …) are inlined at the same level, as in
// Prometheus' own remote read/write and Alertmanager's integrations.
type Config struct {
	// Address is Prometheus' base URL, e.g. http://127.0.0.1:9090 (a path prefix such as
	// /prometheus behind a reverse proxy is kept).
	Address string `yaml:"address"`
	// Timeout bounds one HTTP request (each attempt and each piece of a split range); it is
	// also sent to Prometheus so that the server stops evaluating when we stop waiting.
	Timeout model.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times a request that failed transiently (network error, timeout,
	// 5xx) is tried again; 0 disables retrying.
	Retries int `yaml:"retries"`
	// SigV4 signs every request with AWS Signature Version 4 (Amazon Managed Service for
	// Prometheus, or any Prometheus behind a SigV4 gateway), as Prometheus' own
	// remote_write sigv4 does, with the same library and keys: region, access_key,
	// secret_key (printed <secret>), profile, role_arn, external_id, service_name (aps),
	// and access_key_file, secret_key_file (read again when they change). Without an
	// access key, the AWS default credentials chain.
	SigV4 *SigV4 `yaml:"sigv4,omitempty"`

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
	if _, err := metrics.ParseAddress(c.Address); err != nil {
		es.Add("address", "%v", err)
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if c.Retries < 0 {
		es.Add("retries", "must be >= 0")
	}
	if c.Retries > 10 {
		// More would hold a scheduler tick for minutes on a dead server.
		es.Add("retries", "must be <= 10")
	}
	if err := c.HTTPClientConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	if c.SigV4 != nil {
		c.SigV4.validate(&es, "sigv4")
		// A signed request carries its own Authorization header: another would replace it.
		h := c.HTTPClientConfig
		if h.BasicAuth != nil || h.Authorization != nil || h.OAuth2 != nil || h.BearerToken != "" || h.BearerTokenFile != "" {
			es.Add("sigv4", "cannot be used with basic_auth, authorization, bearer_token or oauth2")
		}
	}
	return es
}
