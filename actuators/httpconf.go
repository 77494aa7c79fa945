package actuators

import (
	"fmt"
	"github.com/canaryd/canaryd/internal/field"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	commoncfg "github.com/prometheus/common/config"
)

// CheckURL checks a URL template: one without actions (a fixed URL) is checked now; one
// with actions is checked by CheckRenderedURL on every event.
func CheckURL(es *field.Errors, field, text string) {
	if strings.Contains(text, "{{") {
		return
	}
	if err := CheckRenderedURL(text); err != nil {
		es.Add(field, "%v", err)
	}
}

// CheckBaseURL checks a fixed base URL a kind appends its API path to: an absolute http
// or https URL without credentials, query or fragment; secretFrom says where the
// credentials come from instead ("the token comes from token_env").
func CheckBaseURL(es *field.Errors, field, raw, secretFrom string) {
	if err := CheckRenderedURL(raw); err != nil {
		es.Add(field, "%v", err)
	} else if u, _ := url.Parse(raw); u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		es.Add(field, "must be a base URL without credentials, query or fragment (%s)", secretFrom)
	}
}

// CheckRenderedURL accepts absolute http and https URLs with a host.
func CheckRenderedURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", u.Redacted())
	}
	return nil
}

// ValidHeaderName reports whether k is an HTTP header name (an RFC 9110 token).
func ValidHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// CheckHeaders checks header names and their value templates under field; secrets are
// the names the actuator's secrets: map defines, as for CheckTemplate.
func CheckHeaders(es *field.Errors, field string, h map[string]string, secrets ...string) map[string]*Template {
	out := make(map[string]*Template, len(h))
	for _, k := range slices.Sorted(maps.Keys(h)) {
		v := h[k]
		p := field + "." + k
		if !ValidHeaderName(k) {
			es.Add(p, "not a valid header name")
			continue
		}
		if t := CheckTemplate(es, p, v, secrets...); t != nil {
			out[k] = t
		}
	}
	return out
}

// NewHTTPClient builds a kind's client from its http_config, as Prometheus does.
func NewHTTPClient(cfg commoncfg.HTTPClientConfig, name string) (*http.Client, error) {
	c, err := commoncfg.NewClientFromConfig(cfg, name)
	if err != nil {
		return nil, fmt.Errorf("http_config: %w", err)
	}
	return c, nil
}

// RenderHeaders renders header templates with d.
func RenderHeaders(ts map[string]*Template, d Data) (map[string]string, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(ts))
	for k, t := range ts {
		v, err := t.Render(d)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("header %s: rendered value contains a line break", k)
		}
		out[k] = v
	}
	return out, nil
}
