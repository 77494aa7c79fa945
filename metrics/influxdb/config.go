package influxdb

import (
	"regexp"
	"strings"
	"unicode"

	commoncfg "github.com/prometheus/common/config"

	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/httpconf"
)

// The query languages a provider speaks.
const (
	// LanguageInfluxQL is InfluxDB 1.x's /query (the default).
	LanguageInfluxQL = "influxql"
	// LanguageFlux is /api/v2/query: InfluxDB 2.x, or 1.8+ with flux-enabled.
	LanguageFlux = "flux"
)

// Config is an InfluxDB provider's YAML configuration. http_config's keys are inlined
// at the same level. InfluxQL (1.x) takes a user's credentials as basic_auth (with
// password_file), or a JWT as authorization: {type: Bearer, credentials_file: …}; Flux
// takes an API token (token_file or token_env; "user:password" for 1.8).
type Config struct {
	// Address is InfluxDB's base URL, e.g. http://127.0.0.1:8086 (a path prefix is kept).
	Address string `yaml:"address"`
	// Language is influxql (the default) or flux.
	Language string `yaml:"language,omitempty"`
	// Database is the database InfluxQL queries run in (the db parameter).
	Database string `yaml:"database,omitempty"`
	// RetentionPolicy, when set, is the rp parameter: the retention policy of
	// measurements the query does not qualify.
	RetentionPolicy string `yaml:"retention_policy,omitempty"`
	// Org is the organization Flux queries run in (the org parameter); InfluxDB 1.8
	// ignores it. A Flux script names its bucket itself (from(bucket: "app"); "db/rp" on 1.8).
	Org string `yaml:"org,omitempty"`
	// Token, TokenFile (a file holding the token alone, read at each request, so a
	// rotated token is picked up) or TokenEnv (an environment variable read at start)
	// give Flux's API token, sent as `Authorization: Token …`; at most one. None: no
	// token (a server without authentication, or http_config's authorization).
	Token     commoncfg.Secret `yaml:"token,omitempty"`
	TokenFile string           `yaml:"token_file,omitempty"`
	TokenEnv  string           `yaml:"token_env,omitempty"`
	// HTTP is timeout, retries (of a network error, 429 or 5xx) and http_config's keys.
	httpconf.HTTP `yaml:",inline"`
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{Language: LanguageInfluxQL, HTTP: httpconf.Default()}
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
	switch c.Language {
	case LanguageInfluxQL:
		if c.Database == "" {
			es.Add("database", "is required")
		}
		for _, f := range []struct{ name, v string }{{"org", c.Org}, {"token", string(c.Token)}, {"token_file", c.TokenFile}, {"token_env", c.TokenEnv}} {
			if f.v != "" {
				es.Add(f.name, "is for language flux; InfluxQL takes basic_auth (with password_file) or authorization")
			}
		}
	case LanguageFlux:
		if c.Org == "" {
			es.Add("org", "is required for language flux (InfluxDB 1.8 ignores it: any name will do)")
		}
		for _, f := range []struct{ name, v string }{{"database", c.Database}, {"retention_policy", c.RetentionPolicy}} {
			if f.v != "" {
				es.Add(f.name, "is for language influxql; a Flux script names its bucket (from(bucket: \"db/rp\") on InfluxDB 1.8)")
			}
		}
		n := 0
		for _, v := range []string{string(c.Token), c.TokenFile, c.TokenEnv} {
			if v != "" {
				n++
			}
		}
		h := c.HTTPClientConfig
		switch {
		case n > 1:
			es.Add("token", "give one of token, token_file and token_env")
		case n == 1 && (h.BasicAuth != nil || h.Authorization != nil || h.OAuth2 != nil || h.BearerToken != "" || h.BearerTokenFile != ""):
			es.Add("token", "not with basic_auth, authorization, bearer_token or oauth2: the token is the Authorization header")
		case c.TokenEnv != "" && !envNameRe.MatchString(c.TokenEnv):
			// Not echoed: it may be the token itself, written in the wrong key.
			es.Add("token_env", "must name an environment variable (letters, digits and _), not hold the token")
		}
	default:
		es.Add("language", "must be %s or %s, got %q", LanguageInfluxQL, LanguageFlux, c.Language)
	}
	for _, f := range []struct{ name, v string }{{"database", c.Database}, {"retention_policy", c.RetentionPolicy}, {"org", c.Org}} {
		if strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			es.Add(f.name, "must not contain control characters")
		}
	}
	c.Check(&es)
	return es
}
