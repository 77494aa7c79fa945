package datadog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/ddserver"
	"github.com/canaryd/canaryd/internal/secretfile"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v1query"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v2query"
)

// operation is the client's name for the V1 query endpoint (its OperationServers key).
const operation = "v1.MetricsApi.QueryMetrics"

// Defaults of the options.
const (
	defaultBackoffBase = 500 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
)

// Provider queries Datadog's V1 query endpoint. It is safe for concurrent use.
type Provider struct {
	cfg     Config
	api     *datadogV1.MetricsApi
	logger  *zap.Logger
	baseURL string // for logs and errors: where the queries go

	// Context values the client reads on every call: the keys (read from their source
	// on each call, so a rotated key file takes effect), and which of its server
	// templates to fill with which variables (built once in New, never mutated).
	apiKey, appKey *secretfile.Source
	serverIndex    int
	serverVars     map[string]string

	// pace spreads the requests over the budget the rate-limit headers announce.
	pace pacer
	now  func() time.Time

	sleep       func(ctx context.Context, d time.Duration) error
	backoffBase time.Duration
	backoffMax  time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// StepAlignment is the grid Datadog's buckets are on: a rollup's (V1) and a
// timeseries interval's (V2) buckets are multiples of the step since the epoch, whatever
// the query's from, so the counts and histogram judges need a canary whose steps start
// on a multiple of the step (the scheduler refuses others, naming the provider).
func (p *Provider) StepAlignment(step time.Duration) time.Duration { return step }

// Option changes a Provider built by New.
type Option func(*Provider)

// WithSleep replaces the wait between attempts; it must return ctx's error when ctx ends
// first. Tests use it to observe the waits without spending them.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(p *Provider) { p.sleep = sleep }
}

// WithClock replaces the clock the pacing reads (default time.Now); tests pair it with
// WithSleep.
func WithClock(now func() time.Time) Option {
	return func(p *Provider) { p.now = now }
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
		now:         time.Now,
		backoffBase: defaultBackoffBase,
		backoffMax:  defaultBackoffMax,
	}
	for _, o := range opts {
		o(p)
	}
	if p.backoffBase <= 0 || p.backoffMax < p.backoffBase {
		return nil, fmt.Errorf("datadog: backoff: need 0 < base <= max, got %s and %s", p.backoffBase, p.backoffMax)
	}

	var err error
	keyLog := logger.With(zap.String("provider", "datadog"))
	if p.apiKey, err = newKeySource("API key", cfg.APIKeyEnv, cfg.APIKeyFile, keyLog); err != nil {
		return nil, err
	}
	if p.appKey, err = newKeySource("application key", cfg.AppKeyEnv, cfg.AppKeyFile, keyLog); err != nil {
		return nil, err
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
		zap.String("api_key", p.keySourceName(cfg.APIKeyEnv, cfg.APIKeyFile)),
		zap.String("app_key", p.keySourceName(cfg.AppKeyEnv, cfg.AppKeyFile)))
	return p, nil
}

// keySourceName says where a key comes from, for logs and errors (never the key).
func (p *Provider) keySourceName(env, file string) string {
	if file != "" {
		return "file " + file
	}
	return "$" + env
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
	ctx = context.WithValue(ctx, datadog.ContextAPIKeys, map[string]datadog.APIKey{
		"apiKeyAuth": {Key: p.apiKey.Get()},
		"appKeyAuth": {Key: p.appKey.Get()},
	})
	ctx = context.WithValue(ctx, datadog.ContextServerIndex, p.serverIndex)
	return context.WithValue(ctx, datadog.ContextServerVariables, p.serverVars)
}

// Query runs q over [q.Start, q.End] (whole seconds) and returns every matching series.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("datadog: %w", err)
	}
	return p.fetch(ctx, q)
}

// fetch runs a valid q on its endpoint.
func (p *Provider) fetch(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if p.v2(q) {
		return p.queryV2(ctx, q)
	}
	a, err := p.queryV1(ctx, q)
	if err != nil {
		return metrics.Series{}, err
	}
	return a.series(&a.resp)
}

// v2 reports whether q goes to the V2 endpoint.
func (p *Provider) v2(q metrics.Query) bool {
	return p.cfg.QueryAPI == "v2" || v2query.IsJSON(q.Text)
}

// v1Answer is a V1 query's answer, with what turning it into a Series needs.
type v1Answer struct {
	resp     datadogV1.MetricsQueryResponse
	text     string // the query sent
	stepped  bool   // false: a rollup was asked for but cannot be appended (an expression)
	method   string // the rollup asked for
	step     time.Duration
	from, to int64 // Unix s
}

// queryV1 runs q through GET /api/v1/query.
func (p *Provider) queryV1(ctx context.Context, q metrics.Query) (v1Answer, error) {
	text, stepped := q.Text, true
	if p.cfg.Rollup != "" {
		// Asked for: the step as a rollup (V1 has no step parameter).
		text, stepped = v1query.WithRollup(q.Text, q.Step, p.cfg.Rollup)
	}
	a := v1Answer{text: text, stepped: stepped, step: q.Step, from: q.Start.Unix(), to: q.End.Unix(), method: p.cfg.Rollup}
	log := p.logger.With(zap.String("query", text), zap.Int64("from", a.from), zap.Int64("to", a.to))
	attempts, err := p.do(ctx, log, text, func(ctx context.Context) (*http.Response, error) {
		var httpResp *http.Response
		var err error
		a.resp, httpResp, err = p.api.QueryMetrics(ctx, a.from, a.to, text)
		return httpResp, err
	})
	if err != nil {
		return v1Answer{}, err
	}
	log.Debug("datadog query done", zap.Int("attempts", attempts), zap.Int("series", len(a.resp.Series)))
	return a, nil
}

// series turns r (the answer, or the part of it that is one cohort's) into a Series:
// the points outside the window dropped and counted, the step's warning added.
func (a *v1Answer) series(r *datadogV1.MetricsQueryResponse) (metrics.Series, error) {
	series, err := toSeries(r)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("datadog: query %q: %w", a.text, err)
	}
	series = dropOutside(series, a.from*1000, a.to*1000)
	if !a.stepped {
		series.Warnings = append(series.Warnings, fmt.Sprintf(
			"datadog: step %s not applied: the query is an expression, so Datadog chose the rollup; add .rollup(%s,%d) to each term",
			a.step, a.method, v1query.StepSeconds(a.step)))
	}
	return series, nil
}

// do calls the endpoint until it answers, retrying 429, 5xx and network errors at most
// cfg.Retries times. Every attempt first waits for its slot in the rate-limit budget;
// every answer updates it. It returns the number of attempts made.
func (p *Provider) do(ctx context.Context, log *zap.Logger, text string, call func(ctx context.Context) (*http.Response, error)) (int, error) {
	ctx = p.withValues(ctx)
	for attempt := 1; ; attempt++ {
		if err := p.paceWait(ctx, log, true); err != nil {
			return attempt - 1, fmt.Errorf("datadog: query %q: %w", text, err)
		}
		actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		httpResp, err := call(actx)
		cancel()
		if httpResp != nil {
			p.pace.observe(parseRateHeaders(httpResp.Header), p.now())
		}
		if err == nil {
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, fmt.Errorf("datadog: query %q: %w", text, ctx.Err())
		}
		f := p.classify(httpResp, err, text)
		if !f.retry || attempt > p.cfg.Retries {
			if f.retry {
				return attempt, fmt.Errorf("%w (attempts: %d)", f.err, attempt)
			}
			return attempt, f.err
		}
		wait := p.backoff(attempt)
		if f.rateLimited {
			if f.reset > p.cfg.MaxRateLimitWait {
				return attempt, fmt.Errorf("%w (resets in %s, longer than max_rate_limit_wait, %s)", f.err, f.reset, p.cfg.MaxRateLimitWait)
			}
			if f.reset > 0 {
				wait = f.reset
			}
			// The next attempt waits in the pacer, with every other query of this
			// provider: the budget is the organisation's, not this query's.
			p.pace.exhausted(wait, p.now())
			log.Warn("datadog rate limit reached, waiting for its reset", append(f.fields,
				zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(f.err))...)
			continue
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return attempt, fmt.Errorf("%w (no time left to retry after %s)", f.err, wait)
		}
		log.Warn("datadog query failed, retrying", append(f.fields,
			zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(f.err))...)
		if err := p.sleep(ctx, wait); err != nil {
			return attempt, fmt.Errorf("%w (while waiting to retry: %w)", f.err, err)
		}
	}
}

// RateLimitError is a query that would have to wait longer for Datadog's rate limit
// than it may (max_rate_limit_wait, or what is left of its context).
type RateLimitError struct {
	Wait time.Duration // until the budget has room
	Max  time.Duration // what the query could wait
	Why  string        // which bound: "max_rate_limit_wait" or "the query's deadline"
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited: Datadog's rate limit has room in %s, longer than %s (%s)", e.Wait.Round(time.Second), e.Why, e.Max.Round(time.Second))
}

// paceWait waits for the next slot of the rate-limit budget (take: and takes it). A wait
// longer than max_rate_limit_wait or the rest of ctx fails at once, as a *RateLimitError.
func (p *Provider) paceWait(ctx context.Context, log *zap.Logger, take bool) error {
	now := p.now()
	// Look first, take after: a wait that is refused must not push back every later
	// query by the slot it would have had.
	wait := p.pace.reserve(now, false).Sub(now)
	if err := p.paceBound(ctx, wait); err != nil {
		return err
	}
	if take {
		wait = p.pace.reserve(now, true).Sub(now)
		if err := p.paceBound(ctx, wait); err != nil {
			return err
		}
	}
	if wait <= 0 {
		return nil
	}
	if wait >= time.Second {
		log.Info("datadog queries paced by the rate limit", zap.Duration("wait", wait))
	}
	if err := p.sleep(ctx, wait); err != nil {
		return fmt.Errorf("waiting %s for the rate limit: %w", wait, err)
	}
	return nil
}

// paceBound refuses a wait longer than max_rate_limit_wait or what is left of ctx.
func (p *Provider) paceBound(ctx context.Context, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	if wait > p.cfg.MaxRateLimitWait {
		return &RateLimitError{Wait: wait, Max: p.cfg.MaxRateLimitWait, Why: "max_rate_limit_wait"}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return &RateLimitError{Wait: wait, Max: time.Until(dl), Why: "the query's deadline"}
	}
	return nil
}

// Pace waits until Datadog's rate limit, as its last answers announced it, has room for
// a query, without taking the room. The scheduler calls it before each query, outside
// the query's timeout (metrics.Pacer), so that an exhausted budget delays the interval
// (up to max_rate_limit_wait) instead of failing it.
func (p *Provider) Pace(ctx context.Context) error {
	if err := p.paceWait(ctx, p.logger, false); err != nil {
		return fmt.Errorf("datadog: %w", err)
	}
	return nil
}

// Ping checks the API key with Datadog's GET /api/v1/validate, once, without retries
// (the daemon's startup check): a wrong key or site shows at start instead of as error
// canaries later. A key Datadog refuses (401/403, or valid: false) is a *KeyRefusedError;
// any other failure (the network, a 5xx) says Datadog could not be asked. The
// application key is not checked by this endpoint; a wrong one shows on the first query.
func (p *Provider) Ping(ctx context.Context) error {
	ctx = p.withValues(ctx)
	resp, httpResp, err := datadogV1.NewAuthenticationApi(p.api.Client).Validate(ctx)
	if httpResp != nil {
		p.pace.observe(parseRateHeaders(httpResp.Header), p.now())
	}
	where := p.keySourceName(p.cfg.APIKeyEnv, p.cfg.APIKeyFile)
	if err != nil {
		var oe datadog.GenericOpenAPIError
		if httpResp != nil && errors.As(err, &oe) {
			apiErr := &APIError{StatusCode: httpResp.StatusCode, Errors: errorMessages(oe.Body())}
			if httpResp.StatusCode == http.StatusForbidden || httpResp.StatusCode == http.StatusUnauthorized {
				return &KeyRefusedError{URL: p.baseURL, Source: where, Why: fmt.Sprintf("GET /api/v1/validate: %v", apiErr)}
			}
			return fmt.Errorf("datadog: GET /api/v1/validate: %w", apiErr)
		}
		return fmt.Errorf("datadog: GET /api/v1/validate: %w", err)
	}
	if !resp.GetValid() {
		return &KeyRefusedError{URL: p.baseURL, Source: where, Why: "GET /api/v1/validate answered valid: false"}
	}
	return nil
}

// KeyRefusedError is Datadog refusing the API key at the startup check. It names where
// the key came from (the environment variable or the file), never the key.
type KeyRefusedError struct {
	URL    string // the API asked
	Source string // "$DD_API_KEY", or "file /run/secrets/dd-api-key"
	Why    string // what Datadog answered
}

func (e *KeyRefusedError) Error() string {
	return fmt.Sprintf("datadog: %s refused the API key from %s (%s)", e.URL, e.Source, e.Why)
}

// KeyRefused tells a caller's startup check that the credential, not the network, failed.
func (e *KeyRefusedError) KeyRefused() bool { return true }

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

// errorMessages reads Datadog's {"errors": ["..."]}; any other body (a proxy's or a load
// balancer's HTML page on a 429 or 5xx) is cut to one short line of its text.
func errorMessages(body []byte) []string {
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		return e.Errors
	}
	s := oneLine(string(body))
	if s == "" {
		return nil
	}
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	return []string{s}
}

// oneLine is text without markup, its white space (line breaks too) collapsed: an HTML
// page's <title> when it has one, else its text.
func oneLine(s string) string {
	if i := strings.Index(strings.ToLower(s), "<title>"); i >= 0 {
		rest := s[i+len("<title>"):]
		if j := strings.Index(strings.ToLower(rest), "</title>"); j >= 0 {
			s = rest[:j]
		}
	}
	var b strings.Builder
	inTag := false
	for _, r := range s {
		switch {
		case r == '<':
			inTag = true
			b.WriteByte(' ')
		case r == '>' && inTag:
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// dropOutside keeps the points in [lo, hi] (Unix ms), the window asked for, and counts
// the others in a warning: a rollup bucket aligned before the start, or an answer for
// another window, must not be judged as this one.
func dropOutside(s metrics.Series, lo, hi int64) metrics.Series {
	dropped := 0
	for i := range s.Streams {
		pts := s.Streams[i].Points[:0]
		for _, pt := range s.Streams[i].Points {
			if pt.T < lo || pt.T > hi {
				dropped++
				continue
			}
			pts = append(pts, pt)
		}
		s.Streams[i].Points = pts
	}
	if dropped > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("datadog: dropped %d points outside the window asked for", dropped))
	}
	return s
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
