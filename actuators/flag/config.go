package flag

import (
	"github.com/canaryd/canaryd/internal/field"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators"
)

// Config is a flag actuator's YAML: one HTTP request that flips a kill switch.
type Config struct {
	// Method defaults to PATCH (LaunchDarkly's flag update).
	Method string `yaml:"method,omitempty"`
	// URL, Headers' values and Body are templates; they see .Secrets.
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty"`
	// Secrets maps a name to the environment variable holding it: `secrets: {token:
	// LD_API_TOKEN}` makes {{ .Secrets.token }} the variable's value when sent and
	// "<secret>" in the audit log.
	Secrets map[string]string `yaml:"secrets,omitempty"`
	Timeout model.Duration    `yaml:"timeout,omitempty"`
	// PreflightURL, when set, reads the flag when a canary is registered: a GET with
	// Headers (and .Secrets) that must answer 2xx, so a flag that does not exist (404)
	// or a token that no longer works fails before the canary starts. A template.
	PreflightURL string `yaml:"preflight_url,omitempty"`
	// PreflightOn, when set, is the JSON pointer (RFC 6901) of the flag's state in the
	// answer, which must be true: /environments/{{ .Vars.ld_environment }}/on for
	// LaunchDarkly. Each value a template puts in it stays one token (/ and ~ escaped).
	PreflightOn string `yaml:"preflight_on,omitempty"`
	// HTTPConfig is the client's TLS, proxy and auth settings, as in Prometheus.
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`
}

var methods = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodGet}

// DefaultConfig is what omitted keys mean.
func DefaultConfig() Config {
	return Config{Method: http.MethodPatch, Timeout: model.Duration(10 * time.Second), HTTPConfig: commoncfg.DefaultHTTPClientConfig}
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
	c.Method = strings.ToUpper(c.Method)
	if !slices.Contains(methods, c.Method) {
		es.Add("method", "%q is not one of %v", c.Method, methods)
	}
	names := slices.Sorted(maps.Keys(c.Secrets))
	if c.URL == "" {
		es.Add("url", "required")
	} else {
		actuators.CheckURLTemplate(&es, "url", c.URL, names...)
	}
	actuators.CheckHeaders(&es, "headers", c.Headers, names...)
	if c.Body != "" {
		actuators.CheckTemplate(&es, "body", c.Body, names...)
	}
	if c.PreflightURL != "" {
		actuators.CheckURLTemplate(&es, "preflight_url", c.PreflightURL, names...)
	}
	if c.PreflightOn != "" {
		if c.PreflightURL == "" {
			es.Add("preflight_on", "needs preflight_url: the request that reads the flag")
		}
		checkPointer(&es, "preflight_on", c.PreflightOn, names)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Secrets)) {
		if k == "" {
			es.Add("secrets", "a secret needs a name")
		}
		actuators.CheckEnvName(&es, "secrets."+k, c.Secrets[k])
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if err := c.HTTPConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
	return es
}
