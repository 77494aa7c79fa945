package web

import (
	"net/http"
	"net/textproto"
	"strings"
	"unicode"

	"text/template"

	"github.com/theory/jsonpath"

	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/httpconf"
)

// The time formats a point's time field may be in.
const (
	TimeUnix    = "unix"    // seconds since the epoch, a number or a numeric string, fractions kept to the ms
	TimeUnixMS  = "unix_ms" // milliseconds since the epoch
	TimeRFC3339 = "rfc3339" // a string such as 2026-12-01T14:00:00Z or with a fraction and an offset
)

// Config is a web provider's YAML configuration. http_config's keys are inlined at the
// same level (authorization, basic_auth, tls_config, proxy_url, and http_headers, whose
// secrets and files are the way to send a secret header from a file).
type Config struct {
	// URL is a template of the request's URL (see Data), e.g.
	// https://signoz:8080/api/v1/query_range?query={{ .Query }}&start={{ .Start.Unix }}.
	URL string `yaml:"url"`
	// Method is GET (the default), POST or PUT.
	Method string `yaml:"method,omitempty"`
	// Headers are sent as they are written (not secrets: they print).
	Headers map[string]string `yaml:"headers,omitempty"`
	// HeadersEnv sends a header whose value is read from an environment variable at
	// start, e.g. {X-Api-Key: SIGNOZ_API_KEY}: a secret that never appears in the file.
	HeadersEnv map[string]string `yaml:"headers_env,omitempty"`
	// Body is a template of the request's body (POST or PUT only).
	Body string `yaml:"body,omitempty"`
	// ContentType of the body: application/json (the default, its values JSON-escaped)
	// or application/x-www-form-urlencoded (its values form-escaped).
	ContentType string `yaml:"content_type,omitempty"`
	// Points is a JSONPath (RFC 9535) to the points array in the answer; a path that
	// selects several arrays ($.data.result[*].values) makes a stream of each.
	Points string `yaml:"points"`
	// Time and Value are JSONPaths from a point to its time and value ($[0] and $[1], the
	// defaults, for [t, v] pairs; $.timestamp for objects).
	Time  string `yaml:"time,omitempty"`
	Value string `yaml:"value,omitempty"`
	// TimeFormat is unix (the default), unix_ms or rfc3339.
	TimeFormat string `yaml:"time_format,omitempty"`
	// Error, when set, is a JSONPath to an error message in a 2xx answer (services that
	// answer {"status": "error", "error": "…"} with a 200): a non-empty one is an error.
	Error string `yaml:"error,omitempty"`
	// HTTP is timeout, retries (of a network error, 429 or 5xx) and http_config's keys.
	httpconf.HTTP `yaml:",inline"`
}

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{
		Method:     http.MethodGet,
		Time:       "$[0]",
		Value:      "$[1]",
		TimeFormat: TimeUnix,
		HTTP:       httpconf.Default(),
	}
}

// UnmarshalYAML sets the defaults, then decodes the given keys onto them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// compiled is a checked config's templates and paths.
type compiled struct {
	url, body         *template.Template
	points, time, val *jsonpath.Path
	errPath           *jsonpath.Path
	pointsSingular    bool
}

// Validate reports every invalid field, by its YAML name.
func (c *Config) Validate() field.Errors {
	_, es := c.compile()
	return es
}

func (c *Config) compile() (compiled, field.Errors) {
	var es field.Errors
	var out compiled
	if c.URL == "" {
		es.Add("url", "is required")
	} else if t, err := parseEscaped("url", c.URL, kindURL); err != nil {
		es.Add("url", "%v", err)
	} else if u, err := execute(t, sample); err != nil {
		es.Add("url", "%v", err)
	} else if pu, err := metrics.ParseAddress(u); err != nil {
		es.Add("url", "%v", err)
	} else if pu.User != nil {
		es.Add("url", "must not carry credentials; use basic_auth with password_file or http_headers with files")
	} else {
		out.url = t
	}
	switch c.Method {
	case http.MethodGet:
		if c.Body != "" {
			es.Add("body", "needs method POST or PUT")
		}
	case http.MethodPost, http.MethodPut:
	default:
		es.Add("method", "must be GET, POST or PUT, got %q", c.Method)
	}
	k := kindJSON
	switch c.ContentType {
	case "", "application/json":
	case "application/x-www-form-urlencoded":
		k = kindForm
	default:
		es.Add("content_type", "must be application/json or application/x-www-form-urlencoded")
	}
	if c.Body != "" {
		if t, err := parseEscaped("body", c.Body, k); err != nil {
			es.Add("body", "%v", err)
		} else if _, err := renderBody(t, k, sample); err != nil {
			es.Add("body", "%v", err)
		} else {
			out.body = t
		}
	}
	for name, v := range c.Headers {
		checkHeader(&es, "headers", name)
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			es.Add(field.Join("headers", name), "must not contain control characters")
		}
	}
	for name, env := range c.HeadersEnv {
		checkHeader(&es, "headers_env", name)
		if env == "" {
			es.Add(field.Join("headers_env", name), "must name an environment variable")
		}
	}
	paths := []struct {
		key, text string
		dst       **jsonpath.Path
	}{{"points", c.Points, &out.points}, {"time", c.Time, &out.time}, {"value", c.Value, &out.val}, {"error", c.Error, &out.errPath}}
	for _, p := range paths {
		if p.text == "" {
			if p.key != "error" {
				es.Add(p.key, "is required")
			}
			continue
		}
		jp, err := jsonpath.Parse(p.text)
		if err != nil {
			es.Add(p.key, "%v", err)
			continue
		}
		*p.dst = jp
	}
	if out.points != nil {
		out.pointsSingular = out.points.Query().Singular() != nil
	}
	switch c.TimeFormat {
	case TimeUnix, TimeUnixMS, TimeRFC3339:
	default:
		es.Add("time_format", "must be unix, unix_ms or rfc3339, got %q", c.TimeFormat)
	}
	c.Check(&es)
	return out, es
}

func checkHeader(es *field.Errors, key, name string) {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) >= 0 {
		es.Add(field.Join(key, name), "is not a header name")
		return
	}
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Host", "Content-Length", "Content-Type":
		es.Add(field.Join(key, name), "is set by canaryd")
	}
}
