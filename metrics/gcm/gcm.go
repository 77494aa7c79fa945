// Package gcm is the metrics.Provider for Google Cloud Monitoring (type: gcm): it runs
// one cohort's PromQL through Cloud Monitoring's Prometheus-compatible query API,
// https://monitoring.googleapis.com/v1/projects/{project}/location/global/prometheus/api/v1/query_range,
// with OAuth 2.0 tokens from a service account key file or Application Default
// Credentials (golang.org/x/oauth2/google, scope monitoring.read). The API answers as
// Prometheus does, so the query and decoding are the prometheus provider's; this package
// adds the project's URL and the tokens. It never logs or returns a token or a key.
//
// # Why the PromQL endpoint
//
// Google documents it as the way to query Managed Service for Prometheus and every
// Cloud Monitoring metric (system metrics as PromQL names such as
// kubernetes_io:container_cpu_core_usage_time); the official client's
// timeSeries.list would need a filter language and aligners of its own for the same
// points, and brings the gRPC stack.
package gcm

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus"
)

// DefaultEndpoint is Cloud Monitoring's API.
const DefaultEndpoint = "https://monitoring.googleapis.com"

// Scope is the OAuth 2.0 scope the tokens are asked for: reading metrics only.
const Scope = "https://www.googleapis.com/auth/monitoring.read"

// Config is a gcm provider's YAML configuration.
type Config struct {
	// Project is the Google Cloud project ID whose metrics are queried (the scoping
	// project of a metrics scope reads its monitored projects too).
	Project string `yaml:"project"`
	// Endpoint replaces DefaultEndpoint (a private endpoint, or a test server).
	Endpoint string `yaml:"endpoint,omitempty"`
	// CredentialsFile is a service account key (JSON, type service_account); without it, Application Default
	// Credentials (GOOGLE_APPLICATION_CREDENTIALS, the metadata server on GCE/GKE).
	CredentialsFile string `yaml:"credentials_file,omitempty"`
	// Timeout bounds one HTTP request; Retries as the prometheus provider's.
	Timeout model.Duration `yaml:"timeout,omitempty"`
	Retries int            `yaml:"retries"`
}

// DefaultConfig returns what an omitted key means.
func DefaultConfig() Config {
	return Config{Endpoint: DefaultEndpoint, Timeout: model.Duration(30 * time.Second), Retries: 3}
}

// UnmarshalYAML sets the defaults, then decodes the given keys onto them.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// projectID is Google's rule for a project ID.
var projectID = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)

// Validate reports every invalid field, by its YAML name.
func (c *Config) Validate() field.Errors {
	var es field.Errors
	if c.Project == "" {
		es.Add("project", "is required")
	} else if !projectID.MatchString(c.Project) {
		es.Add("project", "%q is not a project ID (6 to 30 lowercase letters, digits and hyphens)", c.Project)
	}
	if u, err := metrics.ParseAddress(c.Endpoint); err != nil {
		es.Add("endpoint", "%v", err)
	} else if u.User != nil || u.RawQuery != "" || strings.Trim(u.Path, "/") != "" {
		es.Add("endpoint", "must be a scheme and host only, e.g. %s", DefaultEndpoint)
	}
	if c.Timeout <= 0 {
		es.Add("timeout", "must be > 0")
	}
	if c.Retries < 0 || c.Retries > 10 {
		es.Add("retries", "must be between 0 and 10")
	}
	return es
}

// Provider queries one project. It is safe for concurrent use.
type Provider struct {
	prom *prometheus.Provider
}

var _ metrics.Provider = (*Provider)(nil)

// New checks cfg, loads the credentials and builds the client once.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	return newProvider(context.Background(), cfg, logger)
}

func newProvider(ctx context.Context, cfg Config, logger *zap.Logger) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("gcm: config: %w", err)
	}
	var creds *google.Credentials
	var err error
	if cfg.CredentialsFile != "" {
		b, rerr := os.ReadFile(cfg.CredentialsFile)
		if rerr != nil {
			return nil, fmt.Errorf("gcm: credentials_file: %w", rerr)
		}
		// Only a service account key: another credential type in the file (an external
		// account's URLs) would make the library fetch from where the file says.
		creds, err = google.CredentialsFromJSONWithType(ctx, b, google.ServiceAccount, Scope)
		if err != nil {
			// The library's errors quote no key material.
			return nil, fmt.Errorf("gcm: credentials_file %s: %w", cfg.CredentialsFile, err)
		}
	} else if creds, err = google.FindDefaultCredentials(ctx, Scope); err != nil {
		return nil, fmt.Errorf("gcm: no credentials_file and no Application Default Credentials: %w", err)
	}
	pc := prometheus.DefaultConfig()
	pc.Address = strings.TrimRight(cfg.Endpoint, "/") + "/v1/projects/" + cfg.Project + "/location/global/prometheus"
	pc.Timeout, pc.Retries = cfg.Timeout, cfg.Retries
	if logger == nil {
		logger = zap.NewNop()
	}
	src := oauth2.ReuseTokenSource(nil, creds.TokenSource)
	p, err := prometheus.NewWithTransport(pc, logger.With(zap.String("kind", "gcm"), zap.String("project", cfg.Project)), func(next http.RoundTripper) http.RoundTripper {
		return &oauth2.Transport{Source: src, Base: next}
	})
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return &Provider{prom: p}, nil
}

// Query runs q's PromQL as a range query.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	s, err := p.prom.Query(ctx, q)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("gcm: %w", err)
	}
	return s, nil
}

// CheckValue is PromQL's: a value sits in a double-quoted label value.
func (p *Provider) CheckValue(v string) error { return p.prom.CheckValue(v) }
