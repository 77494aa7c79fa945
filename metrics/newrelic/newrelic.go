package newrelic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/secretfile"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/fetch"
)

const maxAnswer = 64 << 20

// Provider runs NRQL through NerdGraph. It is safe for concurrent use.
type Provider struct {
	cfg      Config
	endpoint string
	key      *secretfile.Source
	timeout  int
	fetch    fetch.Client
	logger   *zap.Logger
}

var _ metrics.Provider = (*Provider)(nil)

// New checks cfg, reads the key (a key file again whenever it changes), and builds the
// HTTP client once.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("newrelic: config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.With(zap.String("provider", "newrelic"), zap.String("endpoint", cfg.endpoint()), zap.Int64("account", cfg.AccountID))
	var key *secretfile.Source
	switch {
	case cfg.APIKey != "":
		key = secretfile.Fixed(string(cfg.APIKey))
	case cfg.APIKeyFile != "":
		// Read again whenever the file changes: a rotated key without a restart.
		var err error
		if key, err = secretfile.Open("api_key_file", cfg.APIKeyFile, logger); err != nil {
			return nil, fmt.Errorf("newrelic: api_key_file: %w", err)
		}
	default:
		v := strings.TrimSpace(os.Getenv(cfg.APIKeyEnv))
		if v == "" {
			return nil, fmt.Errorf("newrelic: api_key_env: $%s is not set", cfg.APIKeyEnv)
		}
		key = secretfile.Fixed(v)
	}
	client, err := commoncfg.NewClientFromConfig(cfg.HTTPClientConfig, "newrelic")
	if err != nil {
		return nil, fmt.Errorf("newrelic: http_config: %w", err)
	}
	client.Timeout = time.Duration(cfg.Timeout)
	return &Provider{
		cfg: cfg, endpoint: cfg.endpoint(), key: key, timeout: int(time.Duration(cfg.Timeout) / time.Second), logger: logger,
		fetch: fetch.Client{HTTP: client, Retries: cfg.Retries, MaxAnswer: maxAnswer, AuthHint: "check the User API key (api_key_file or api_key_env)", Logger: logger},
	}, nil
}

// SetBackoff sets the first retry's wait (tests use a short one).
func (p *Provider) SetBackoff(d time.Duration) { p.fetch.Backoff = d }

// gql is the NerdGraph query: the account and the NRQL are variables, so nothing in the
// NRQL is GraphQL syntax.
const gql = `query($accountId: Int!, $nrql: Nrql!, $timeout: Seconds) { actor { account(id: $accountId) { nrql(query: $nrql, timeout: $timeout) { results } } } }`

// windowClause matches what the provider writes itself.
var windowClause = regexp.MustCompile(`(?i)\b(SINCE|UNTIL|TIMESERIES)\b`)

// StepAlignment is the grid New Relic's buckets are on: it snaps a metric query's window
// to its rollups' boundaries (whole minutes, on its clock, for short windows) and bases
// TIMESERIES buckets on UNTIL, so the steps are the canary's only when they start on a
// multiple of the step; the counts and histogram judges need such a canary (the
// scheduler refuses others, naming the provider).
func (p *Provider) StepAlignment(step time.Duration) time.Duration { return step }

// NRQL is q's query with the window: SINCE and UNTIL the window's epoch milliseconds and
// TIMESERIES the step.
func NRQL(q metrics.Query) (string, error) {
	if m := windowClause.FindString(q.Text); m != "" {
		return "", fmt.Errorf("query has %s: canaryd adds SINCE, UNTIL and TIMESERIES for each window itself", strings.ToUpper(m))
	}
	step := q.Step.Round(time.Second)
	if step < time.Second {
		step = time.Second
	}
	return fmt.Sprintf("%s SINCE %d UNTIL %d TIMESERIES %d seconds", strings.TrimSpace(q.Text), q.Start.UnixMilli(), q.End.UnixMilli(), int64(step/time.Second)), nil
}

// Query runs q's NRQL over its window.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("newrelic: %w", err)
	}
	nrql, err := NRQL(q)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("newrelic: query %q: %w", q.Text, err)
	}
	body, err := json.Marshal(map[string]any{
		"query":     gql,
		"variables": map[string]any{"accountId": p.cfg.AccountID, "nrql": nrql, "timeout": p.timeout},
	})
	if err != nil {
		return metrics.Series{}, fmt.Errorf("newrelic: %w", err)
	}
	answer, err := p.fetch.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("API-Key", p.key.Get())
		return req, nil
	})
	if err != nil {
		return metrics.Series{}, fmt.Errorf("newrelic: query %q: %w", nrql, err)
	}
	s, err := decode(answer)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("newrelic: query %q: %w", nrql, err)
	}
	p.logger.Debug("newrelic query done", zap.String("nrql", nrql), zap.Int("streams", len(s.Streams)), zap.Int("points", s.Len()))
	return s, nil
}
