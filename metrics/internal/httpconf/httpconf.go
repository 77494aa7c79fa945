// Package httpconf is the part of an HTTP/JSON provider's YAML that every such provider
// shares: timeout, retries and Prometheus' http_config keys, inlined at the provider's
// level, with their defaults, their checks and the HTTP client they make. It knows no
// backend and never logs.
package httpconf

import (
	"fmt"
	"net/http"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/internal/field"
)

// HTTP is embedded in a provider's Config with `yaml:",inline"`, so its keys sit beside
// the provider's own (address, timeout, basic_auth, tls_config, …).
type HTTP struct {
	// Timeout bounds one HTTP attempt.
	Timeout model.Duration `yaml:"timeout,omitempty"`
	// Retries is how many times an attempt that failed transiently (which failures is
	// the provider's to say) is tried again; 0 disables retrying.
	Retries int `yaml:"retries"`

	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// MaxRetries bounds retries: more would hold a scheduler tick for minutes on a dead
// server.
const MaxRetries = 10

// Default is what the omitted keys mean: 30 s, 3 retries, http_config's defaults.
func Default() HTTP {
	return HTTP{
		Timeout:          model.Duration(30 * time.Second),
		Retries:          3,
		HTTPClientConfig: commoncfg.DefaultHTTPClientConfig,
	}
}

// Check adds the keys' problems to es, by their YAML names.
func (h *HTTP) Check(es *field.Errors) {
	if h.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if h.Retries < 0 || h.Retries > MaxRetries {
		es.Add("retries", "must be between 0 and %d", MaxRetries)
	}
	if err := h.HTTPClientConfig.Validate(); err != nil {
		es.Add("http_config", "%v", err)
	}
}

// Client is the HTTP client the keys describe (auth, TLS, proxy, headers), each attempt
// bounded by Timeout; name is the provider's kind.
func (h *HTTP) Client(name string) (*http.Client, error) {
	c, err := commoncfg.NewClientFromConfig(h.HTTPClientConfig, name)
	if err != nil {
		return nil, fmt.Errorf("http_config: %w", err)
	}
	c.Timeout = time.Duration(h.Timeout)
	return c, nil
}
