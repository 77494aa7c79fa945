package metrics

import (
	"fmt"
	"net/url"

	"github.com/canaryd/canaryd/internal/redact"
)

// ParseAddress parses a provider's base URL (http or https, with a host). On a problem it
// returns the reason, with any credentials in the address redacted so the reason can be
// printed and logged.
func ParseAddress(addr string) (*url.URL, error) {
	if addr == "" {
		return nil, fmt.Errorf("is required")
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return nil, redact.Error(err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("%q has no host", redact.URL(addr))
	}
	return u, nil
}
