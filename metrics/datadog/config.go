package datadog

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config is a Datadog provider's YAML configuration. The keys themselves never appear in
// it: it names the environment variables that hold them.
type Config struct {
	// Site is the Datadog site (datadoghq.com, datadoghq.eu, us3.datadoghq.com, …); the
	// API host is api.<site>.
	Site string `yaml:"site,omitempty"`
	// APIURL, when set, replaces the URL derived from Site (a proxy, or a test server):
	// scheme, host and an optional path prefix, e.g. "http://127.0.0.1:8126/datadog".
	APIURL string `yaml:"api_url,omitempty"`
	// APIKeyEnv and AppKeyEnv name the environment variables holding the API key and the
	// application key.
	APIKeyEnv string `yaml:"api_key_env,omitempty"`
	AppKeyEnv string `yaml:"app_key_env,omitempty"`
	// Timeout bounds each HTTP attempt (not the retries together; ctx does that).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times a failed attempt (429, 5xx, network error) is retried.
	Retries int `yaml:"retries"`
}

// maxRetries keeps a typo (retries: 100) from turning one query into minutes of load on
// an API that is already failing.
const maxRetries = 10

// DefaultConfig returns the configuration used for every key left out of the YAML.
func DefaultConfig() Config {
	return Config{
		Site:      "datadoghq.com",
		APIKeyEnv: "DD_API_KEY",
		AppKeyEnv: "DD_APP_KEY",
		Timeout:   30 * time.Second,
		Retries:   3,
	}
}

// UnmarshalYAML sets the defaults, then the given keys, then validates, so that an invalid
// Config never comes out of a config file. Unknown keys are rejected when the caller
// decodes with yaml.UnmarshalStrict.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config // no methods: stops the recursion into UnmarshalYAML
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.Validate()
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports the first invalid field, by its YAML name.
func (c Config) Validate() error {
	if err := validateSite(c.Site); err != nil {
		return err
	}
	if c.APIURL != "" {
		if err := validateAPIURL(c.APIURL); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, value string }{
		{"api_key_env", c.APIKeyEnv},
		{"app_key_env", c.AppKeyEnv},
	} {
		if !envName.MatchString(f.value) {
			return fmt.Errorf("%s: %q is not an environment variable name (name the variable that holds the key, never the key itself)", f.name, redactIfLong(f.value))
		}
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout: must be > 0, got %s", c.Timeout)
	}
	if c.Retries < 0 || c.Retries > maxRetries {
		return fmt.Errorf("retries: must be between 0 and %d, got %d", maxRetries, c.Retries)
	}
	return nil
}

func validateSite(site string) error {
	switch {
	case site == "":
		return errors.New("site: must not be empty (e.g. datadoghq.com, datadoghq.eu, us3.datadoghq.com)")
	case strings.Contains(site, "://") || strings.ContainsAny(site, "/ ?#@"):
		return fmt.Errorf("site: %q must be a bare site name such as datadoghq.eu; use api_url for a full URL", site)
	case strings.HasPrefix(site, "app.") || strings.HasPrefix(site, "api."):
		return fmt.Errorf("site: %q must be the bare site (e.g. %s): the API host is api.<site>", site, site[4:])
	}
	return nil
}

func validateAPIURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("api_url: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("api_url: %q must start with http:// or https://", raw)
	case u.Host == "":
		return fmt.Errorf("api_url: %q has no host", raw)
	case u.User != nil:
		return fmt.Errorf("api_url: must not carry credentials; the keys come from api_key_env and app_key_env")
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("api_url: %q must not have a query or fragment", raw)
	}
	return nil
}

// redactIfLong keeps a pasted key out of error messages and logs: a value that is long
// enough to be a key is shortened to its first four characters.
func redactIfLong(s string) string {
	if len(s) >= 20 {
		return s[:4] + "…"
	}
	return s
}
