package datadog

import (
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config is a Datadog provider's YAML configuration. The keys themselves never appear in
// it: it names the environment variables or the files that hold them.
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
	// APIKeyFile and AppKeyFile, when set, name files holding the keys instead (a
	// Kubernetes secret volume): read at start, and again whenever the file changes, so a
	// rotated key is used without a restart.
	APIKeyFile string `yaml:"api_key_file,omitempty"`
	AppKeyFile string `yaml:"app_key_file,omitempty"`
	// QueryAPI is the endpoint of a plain query: "v1" (GET /api/v1/query, the default) or
	// "v2" (POST /api/v2/query/timeseries). A query written as a JSON object (queries and
	// formulas) always goes to V2.
	QueryAPI string `yaml:"query_api,omitempty"`
	// Rollup, when set (avg, sum, min, max or count), is appended with the step to a V1
	// single metric query that has no rollup of its own: .rollup(avg,60). Unset, the query
	// is sent as written and Datadog picks the rollup interval from the window.
	Rollup string `yaml:"rollup,omitempty"`
	// CohortTag, when set, is the tag the cohorts' scopes differ in (track): the two
	// cohorts' queries of a metric, identical but for that tag's value, are sent as one
	// query on both values grouped by the tag, and its series split back by their tag.
	CohortTag string `yaml:"cohort_tag,omitempty"`
	// QueriesPerRequest, above 1 (with query_api v2), is how many queries of one canary's
	// interval (its metrics' and cohorts') one V2 request may carry.
	QueriesPerRequest int `yaml:"queries_per_request,omitempty"`
	// MaxRateLimitWait bounds how long a query waits for Datadog's rate limit to reset
	// (X-RateLimit-Reset) before it fails instead.
	MaxRateLimitWait time.Duration `yaml:"max_rate_limit_wait,omitempty"`
	// Timeout bounds each HTTP attempt (not the retries together; ctx does that).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times a failed attempt (429, 5xx, network error) is retried.
	Retries int `yaml:"retries"`
}

// maxQueriesPerRequest bounds a V2 request's queries. Datadog's API reference documents
// no maximum; this keeps one request's answer (every series of every query) and the
// queries one bad query fails with it (they are then sent alone) few.
const maxQueriesPerRequest = 20

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
		// Datadog's query limit is per hour: a reset is up to an hour away, and a canary's
		// interval is minutes. Ten minutes rides out most resets without a canary going
		// stale; past it the query fails and says why.
		MaxRateLimitWait:  10 * time.Minute,
		QueryAPI:          "v1",
		QueriesPerRequest: 1,
	}
}

// UnmarshalYAML sets the defaults, then the given keys; config (and New) then call
// Validate. Unknown keys are rejected when the caller decodes with yaml.UnmarshalStrict.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config // no methods: stops the recursion into UnmarshalYAML
	return unmarshal((*plain)(c))
}

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	tagKey  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_\-./]{0,199}$`)
)

// Validate reports every invalid field, by its YAML name.
func (c Config) Validate() field.Errors {
	var es field.Errors
	if msg := siteProblem(c.Site); msg != "" {
		es.Add("site", "%s", msg)
	}
	if c.APIURL != "" {
		if msg := apiURLProblem(c.APIURL); msg != "" {
			es.Add("api_url", "%s", msg)
		}
	}
	for _, f := range []struct{ name, value string }{
		{"api_key_env", c.APIKeyEnv},
		{"app_key_env", c.AppKeyEnv},
	} {
		if !envName.MatchString(f.value) {
			es.Add(f.name, "%q is not an environment variable name (name the variable that holds the key, never the key itself)", redactIfLong(f.value))
		}
	}
	for _, f := range []struct{ name, value string }{
		{"api_key_file", c.APIKeyFile},
		{"app_key_file", c.AppKeyFile},
	} {
		if f.value != "" && strings.ContainsAny(f.value, "\x00\n") {
			es.Add(f.name, "must be a file path")
		}
	}
	if c.QueryAPI != "v1" && c.QueryAPI != "v2" {
		es.Add("query_api", "must be v1 or v2, got %q", c.QueryAPI)
	}
	switch c.Rollup {
	case "", "avg", "sum", "min", "max", "count":
	default:
		es.Add("rollup", "must be avg, sum, min, max or count (Datadog's rollup methods), got %q", redactIfLong(c.Rollup))
	}
	if c.CohortTag != "" && !tagKey.MatchString(c.CohortTag) {
		es.Add("cohort_tag", "%q is not a tag key (a letter, then letters, digits and _ - . /)", redactIfLong(c.CohortTag))
	}
	switch {
	case c.QueriesPerRequest < 1 || c.QueriesPerRequest > maxQueriesPerRequest:
		es.Add("queries_per_request", "must be between 1 and %d, got %d", maxQueriesPerRequest, c.QueriesPerRequest)
	case c.QueriesPerRequest > 1 && c.QueryAPI != "v2":
		es.Add("queries_per_request", "needs query_api: v2 (only the V2 endpoint takes several queries in one request)")
	}
	if c.MaxRateLimitWait <= 0 || c.MaxRateLimitWait > 24*time.Hour {
		es.Add("max_rate_limit_wait", "must be > 0 and at most 24h, got %s", c.MaxRateLimitWait)
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0, got %s", c.Timeout)
	}
	if c.Retries < 0 || c.Retries > maxRetries {
		es.Add("retries", "must be between 0 and %d, got %d", maxRetries, c.Retries)
	}
	return es
}

func siteProblem(site string) string {
	switch {
	case site == "":
		return "must not be empty (e.g. datadoghq.com, datadoghq.eu, us3.datadoghq.com)"
	case strings.Contains(site, "://") || strings.ContainsAny(site, "/ ?#@"):
		return fmt.Sprintf("%q must be a bare site name such as datadoghq.eu; use api_url for a full URL", site)
	case strings.HasPrefix(site, "app.") || strings.HasPrefix(site, "api."):
		return fmt.Sprintf("%q must be the bare site (e.g. %s): the API host is api.<site>", site, site[4:])
	}
	return ""
}

func apiURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return err.Error()
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q must start with http:// or https://", raw)
	case u.Host == "":
		return fmt.Sprintf("%q has no host", raw)
	case u.User != nil:
		return "must not carry credentials; the keys come from api_key_env/api_key_file and app_key_env/app_key_file"
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q must not have a query or fragment", raw)
	}
	return ""
}

// redactIfLong keeps a pasted key out of error messages and logs: a value that is long
// enough to be a key is shortened to its first four characters.
func redactIfLong(s string) string {
	if len(s) >= 20 {
		return s[:4] + "…"
	}
	return s
}
