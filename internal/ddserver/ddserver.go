// Package ddserver picks the official Datadog client's server template for a site or a
// full API URL: the Datadog metrics provider and the datadog_event actuator share it. The
// templates are found by their URL rather than by index, so a client upgrade that
// reorders them cannot silently send the keys elsewhere. It makes no request.
package ddserver

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
)

// Pick returns the index of operation's server template and its variables: for apiURL
// (scheme, host and an optional path prefix) when set, else for api.<site>. Operations
// without servers of their own use the configuration's.
func Pick(conf *datadog.Configuration, operation, site, apiURL string) (int, map[string]string, error) {
	want, vars := "https://{subdomain}.{site}", map[string]string{"site": site, "subdomain": "api"}
	if apiURL != "" {
		u, err := url.Parse(apiURL)
		if err != nil {
			return 0, nil, fmt.Errorf("api_url: %w", err)
		}
		want = "{protocol}://{name}"
		vars = map[string]string{"protocol": u.Scheme, "name": u.Host + strings.TrimRight(u.EscapedPath(), "/")}
	}
	servers := conf.Servers
	if s, ok := conf.OperationServers[operation]; ok {
		servers = s
	}
	for i, s := range servers {
		if s.URL != want {
			continue
		}
		// Prefer a template without an enum on its variables: a new Datadog site must not
		// need a client upgrade.
		if v, ok := s.Variables["site"]; ok && len(v.EnumValues) > 0 {
			continue
		}
		return i, vars, nil
	}
	return 0, nil, fmt.Errorf("the client has no server template %q for %s", want, operation)
}
