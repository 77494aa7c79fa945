package webhook

import (
	"github.com/canaryd/canaryd/internal/field"
	"net/http"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
)

// Config is a webhook actuator's YAML.
type Config struct {
	// URL is where the event is POSTed (a template: http://deploy/{{ .Vars.app }}/abort).
	URL string `yaml:"url"`
	// Headers are extra request headers, values are templates.
	Headers map[string]string `yaml:"headers,omitempty"`
	// SecretEnv names the environment variable holding the HMAC-SHA256 key; when set,
	// SignatureHeader carries "sha256=" and the hex HMAC of the body.
	SecretEnv       string `yaml:"secret_env,omitempty"`
	SignatureHeader string `yaml:"signature_header,omitempty"`
	// PreflightURL, when set, is checked when a canary is registered: a GET (or HEAD,
	// PreflightMethod) with Headers that must answer 2xx. A template, escaped as URL.
	PreflightURL    string `yaml:"preflight_url,omitempty"`
	PreflightMethod string `yaml:"preflight_method,omitempty"`
	// Timeout bounds one attempt.
	Timeout    model.Duration             `yaml:"timeout,omitempty"`
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`
}

// DefaultSignatureHeader carries the body's HMAC when secret_env is set.
const DefaultSignatureHeader = "X-Canaryd-Signature"

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{
		SignatureHeader: DefaultSignatureHeader,
		PreflightMethod: http.MethodGet,
		Timeout:         model.Duration(10 * time.Second),
		HTTPConfig:      commoncfg.DefaultHTTPClientConfig,
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
	if c.URL == "" {
		es.Add("url", "required")
	} else {
		actuators.CheckURLTemplate(&es, "url", c.URL)
	}
	actuators.CheckHeaders(&es, "headers", c.Headers)
	if c.PreflightURL != "" {
		actuators.CheckURLTemplate(&es, "preflight_url", c.PreflightURL)
	}
	c.PreflightMethod = strings.ToUpper(c.PreflightMethod)
	if c.PreflightMethod != http.MethodGet && c.PreflightMethod != http.MethodHead {
		es.Add("preflight_method", "%q is not GET or HEAD (a preflight changes nothing)", c.PreflightMethod)
	}
	if c.SecretEnv != "" {
		actuators.CheckEnvName(&es, "secret_env", c.SecretEnv)
		if !actuators.ValidHeaderName(c.SignatureHeader) {
			es.Add("signature_header", "not a valid header name")
		}
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if err := c.HTTPConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}
