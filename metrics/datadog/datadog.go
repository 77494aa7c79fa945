package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/ddserver"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v1query"
)

// operation is the client's name for the V1 query endpoint (its OperationServers key).
const operation = "v1.MetricsApi.QueryMetrics"

// Defaults of the options.
const (
	defaultBackoffBase = 500 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
)

// maxRateLimitWait bounds how long a 429 may make a query wait for the rate limit to
// reset; a longer reset fails the query at once instead.
const maxRateLimitWait = time.Minute

// Provider queries Datadog's V1 query endpoint. It is safe for concurrent use.
type Provider struct {
	cfg     Config
	api     *datadogV1.MetricsApi
	logger  *zap.Logger
	baseURL string // for logs and errors: where the queries go

	// Context values the client reads on every call: the keys, and which of its server
	// templates to fill with which variables. Built once in New, never mutated.
	keys        map[string]datadog.APIKey
	serverIndex int
	serverVars  map[string]string

	sleep       func(ctx context.Context, d time.Duration) error
	backoffBase time.Duration
	backoffMax  time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// Option changes a Provider built by New.
type Option func(*Provider)

// WithSleep replaces the wait between attempts; it must return ctx's error when ctx ends
// first. Tests use it to observe the waits without spending them.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(p *Provider) { p.sleep = sleep }
}

// WithBackoff sets the first wait and the cap of the exponential backoff after 5xx and
// network errors (defaults 500ms and 10s).
func WithBackoff(base, maxWait time.Duration) Option {
	return func(p *Provider) { p.backoffBase, p.backoffMax = base, maxWait }
}

// New checks cfg, reads the keys from the environment and builds the client once.
func New(cfg Config, logger *zap.Logger, opts ...Option) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("datadog: config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	p := &Provider{
		cfg:         cfg,
		sleep:       sleepCtx,
		backoffBase: defaultBackoffBase,
		backoffMax:  defaultBackoffMax,
	}
	for _, o := range opts {
		o(p)
	}
	if p.backoffBase <= 0 || p.backoffMax < p.backoffBase {
		return nil, fmt.Errorf("datadog: backoff: need 0 < base <= max, got %s and %s", p.backoffBase, p.backoffMax)
	}

	apiKey, err := lookupKey(cfg.APIKeyEnv, "API key")
	if err != nil {
		return nil, err
	}
	appKey, err := lookupKey(cfg.AppKeyEnv, "application key")
	if err != nil {
		return nil, err
	}
	p.keys = map[string]datadog.APIKey{
		"apiKeyAuth": {Key: apiKey},
		"appKeyAuth": {Key: appKey},
	}

	conf := datadog.NewConfiguration()
	conf.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	// One HTTP request per QueryMetrics call: the retries are ours (see the package doc).
	conf.RetryConfiguration.EnableRetry = false
	conf.Debug = false // its debug dump goes to the standard logger, not zap

	if err := p.pickServer(conf); err != nil {
		return nil, err
	}
	p.api = datadogV1.NewMetricsApi(datadog.NewAPIClient(conf))
	p.baseURL, err = conf.ServerURLWithContext(p.withValues(context.Background()), operation)
	if err != nil {
		return nil, fmt.Errorf("datadog: server URL: %w", err)
	}
	p.logger = logger.With(zap.String("provider", "datadog"), zap.String("api", p.baseURL))
	p.logger.Debug("datadog provider ready",
		zap.Duration("timeout", cfg.Timeout), zap.Int("retries", cfg.Retries),
		zap.String("api_key_env", cfg.APIKeyEnv), zap.String("app_key_env", cfg.AppKeyEnv))
	return p, nil
}

func lookupKey(env, what string) (string, error) {
	v, ok := os.LookupEnv(env)
	v = strings.TrimSpace(v)
	switch {
	case !ok:
		return "", fmt.Errorf("datadog: %s: environment variable %s is not set", what, env)
	case v == "":
		return "", fmt.Errorf("datadog: %s: environment variable %s is empty", what, env)
	}
	return v, nil
}

// pickServer chooses the client's server template and its variables (ddserver.Pick).
func (p *Provider) pickServer(conf *datadog.Configuration) error {
	i, vars, err := ddserver.Pick(conf, operation, p.cfg.Site, p.cfg.APIURL)
	if err != nil {
		return fmt.Errorf("datadog: config: %w", err)
	}
	p.serverIndex, p.serverVars = i, vars
	return nil
}

// withValues adds what the client reads from the context on each call.
func (p *Provider) withValues(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, datadog.ContextAPIKeys, p.keys)
	ctx = context.WithValue(ctx, datadog.ContextServerIndex, p.serverIndex)
	return context.WithValue(ctx, datadog.ContextServerVariables, p.serverVars)
}

// Query runs q over [q.Start, q.End] (whole seconds) and returns every matching series.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("datadog: %w", err)
	}
	text, stepped := v1query.WithRollup(q.Text, q.Step)
	from, to := q.Start.Unix(), q.End.Unix()
	log := p.logger.With(zap.String("query", text), zap.Int64("from", from), zap.Int64("to", to))

	resp, attempts, err := p.do(ctx, log, from, to, text)
	if err != nil {
		return metrics.Series{}, err
	}
	series, err := toSeries(&resp)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("datadog: query %q: %w", text, err)
	}
	if !stepped {
		series.Warnings = append(series.Warnings, fmt.Sprintf(
			"datadog: step %s not applied: the query is an expression, so Datadog chose the rollup; add .rollup(avg,%d) to each term",
			q.Step, v1query.StepSeconds(q.Step)))
	}
	log.Debug("datadog query done", zap.Int("attempts", attempts),
		zap.Int("streams", len(series.Streams)), zap.Int("points", series.Len()))
	return series, nil
}

// do calls the endpoint until it answers, retrying 429, 5xx and network errors at most
// cfg.Retries times. It returns the number of attempts made.
func (p *Provider) do(ctx context.Context, log *zap.Logger, from, to int64, text string) (datadogV1.MetricsQueryResponse, int, error) {
	ctx = p.withValues(ctx)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		resp, httpResp, err := p.api.QueryMetrics(actx, from, to, text)
		cancel()
		if err == nil {
			return resp, attempt, nil
		}
		if ctx.Err() != nil {
			return resp, attempt, fmt.Errorf("datadog: query %q: %w", text, ctx.Err())
		}
		f := p.classify(httpResp, err, text)
		if !f.retry || attempt > p.cfg.Retries {
			if f.retry {
				return resp, attempt, fmt.Errorf("%w (attempts: %d)", f.err, attempt)
			}
			return resp, attempt, f.err
		}
		wait := p.backoff(attempt)
		if f.rateLimited {
			if f.reset > maxRateLimitWait {
				return resp, attempt, fmt.Errorf("%w (resets in %s, longer than the %s a query may wait)", f.err, f.reset, maxRateLimitWait)
			}
			if f.reset > 0 {
				wait = f.reset
			}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return resp, attempt, fmt.Errorf("%w (no time left to retry after %s)", f.err, wait)
		}
		log.Warn("datadog query failed, retrying", append(f.fields,
			zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(f.err))...)
		if err := p.sleep(ctx, wait); err != nil {
			return resp, attempt, fmt.Errorf("%w (while waiting to retry: %w)", f.err, err)
		}
	}
}

// failure is what one failed attempt means for the next.
type failure struct {
	err         error
	retry       bool
	rateLimited bool
	reset       time.Duration // 429: time until the limit resets, 0 if unknown
	fields      []zap.Field
}

// classify turns a failed call into an error and a retry decision.
func (p *Provider) classify(httpResp *http.Response, err error, text string) failure {
	var oe datadog.GenericOpenAPIError
	if httpResp == nil {
		// Only a transport error (*url.Error from http.Client.Do) is worth retrying; the
		// client's own errors before sending (server URL, request building) are not.
		var ue *url.Error
		return failure{
			err:   fmt.Errorf("datadog: query %q: %w", text, err),
			retry: errors.As(err, &ue),
		}
	}
	code := httpResp.StatusCode
	if !errors.As(err, &oe) {
		// The status came but reading the body failed: the connection broke.
		return failure{err: fmt.Errorf("datadog: query %q: read response (HTTP %d): %w", text, code, err), retry: true}
	}
	if code < 300 {
		// A 2xx body the client could not decode: retrying would decode the same.
		return failure{err: fmt.Errorf("datadog: query %q: decode response (HTTP %d): %w", text, code, err)}
	}
	apiErr := &APIError{StatusCode: code, Errors: errorMessages(oe.Body())}
	switch {
	case code == http.StatusTooManyRequests:
		h := httpResp.Header
		return failure{
			err:         fmt.Errorf("datadog: rate limited: %w", apiErr),
			retry:       true,
			rateLimited: true,
			reset:       parseReset(h.Get("X-RateLimit-Reset")),
			fields: []zap.Field{
				zap.String("ratelimit_limit", h.Get("X-RateLimit-Limit")),
				zap.String("ratelimit_period", h.Get("X-RateLimit-Period")),
				zap.String("ratelimit_remaining", h.Get("X-RateLimit-Remaining")),
				zap.String("ratelimit_reset", h.Get("X-RateLimit-Reset")),
				zap.String("ratelimit_name", h.Get("X-RateLimit-Name")),
			},
		}
	case code >= 500:
		return failure{err: fmt.Errorf("datadog: server error: %w", apiErr), retry: true, fields: []zap.Field{zap.Int("status", code)}}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return failure{err: fmt.Errorf("datadog: forbidden: check %s/%s (%w)", p.cfg.APIKeyEnv, p.cfg.AppKeyEnv, apiErr)}
	case code == http.StatusBadRequest:
		return failure{err: fmt.Errorf("datadog: bad query %q: %w", text, apiErr)}
	default:
		return failure{err: fmt.Errorf("datadog: query %q: %w", text, apiErr)}
	}
}

// APIError is an HTTP error answer from Datadog, with the messages of its "errors" list.
type APIError struct {
	StatusCode int
	Errors     []string
}

func (e *APIError) Error() string {
	msg := http.StatusText(e.StatusCode)
	if len(e.Errors) > 0 {
		msg = strings.Join(e.Errors, "; ")
	}
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, msg)
}

// maxErrorText keeps a proxy's HTML error page from flooding logs and reports.
const maxErrorText = 512

// errorMessages reads Datadog's {"errors": ["..."]}; any other body is kept as short text.
func errorMessages(body []byte) []string {
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		return e.Errors
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return nil
	}
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	return []string{s}
}

// parseReset reads X-RateLimit-Reset: whole seconds until the limit resets.
func parseReset(v string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 || n > int64(24*time.Hour/time.Second) {
		return 0
	}
	return time.Duration(n) * time.Second
}

// backoff is the wait before retry number attempt (1-based): base·2^(attempt-1), capped,
// with "equal jitter" (half fixed, half random) so that cohorts failing together do not
// retry together.
func (p *Provider) backoff(attempt int) time.Duration {
	d := p.backoffBase
	for i := 1; i < attempt && d < p.backoffMax; i++ {
		d *= 2
	}
	d = min(d, p.backoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
