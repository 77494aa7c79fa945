package prometheus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/redact"
	"github.com/canaryd/canaryd/metrics"
)

// MaxPointsPerRequest is how many points per series one range request may ask for.
// Prometheus refuses a range query whose (end-start)/step exceeds 11,000.
const MaxPointsPerRequest = 11000

const (
	backoffBase = 250 * time.Millisecond
	backoffMax  = 5 * time.Second
	// maxDetail bounds how much of an error body goes into an error message.
	maxDetail = 512
)

// Provider queries one Prometheus server. It is safe for concurrent use.
type Provider struct {
	address string
	api     v1.API
	timeout time.Duration
	retries int
	logger  *zap.Logger

	// Fields rather than constants so tests can shrink them.
	maxPoints   int
	backoffBase time.Duration
	backoffMax  time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// New checks cfg and builds the HTTP client (auth, TLS, proxy, headers) once. A nil
// logger logs nothing.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	return NewWithTransport(cfg, logger, nil)
}

// NewWithTransport is New with wrap (when not nil) applied to the HTTP client's
// transport: for a provider that speaks the Prometheus API behind its own
// authentication (Google Cloud Monitoring's OAuth 2.0 tokens).
func NewWithTransport(cfg Config, logger *zap.Logger, wrap func(http.RoundTripper) http.RoundTripper) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("prometheus config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	hc, err := commoncfg.NewClientFromConfig(cfg.HTTPClientConfig, "canaryd_prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: http_config: %w", redact.URL(cfg.Address), redact.Error(err))
	}
	if cfg.SigV4 != nil {
		// As Prometheus wraps its remote_write client: the signature is made first, so
		// http_headers are sent unsigned.
		rt, err := newSigV4Transport(cfg.SigV4, hc.Transport, logger.With(zap.String("provider", "prometheus"), zap.String("address", redact.URL(cfg.Address))))
		if err != nil {
			return nil, fmt.Errorf("prometheus %s: sigv4: %w", redact.URL(cfg.Address), err)
		}
		hc.Transport = rt
	}
	if wrap != nil {
		hc.Transport = wrap(hc.Transport)
	}
	c, err := api.NewClient(api.Config{Address: cfg.Address, Client: hc})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", redact.URL(cfg.Address), redact.Error(err))
	}
	return &Provider{
		// Every message names the server without its credentials (userinfo, a token in
		// the query): the address is printed only redacted.
		address:     redact.URL(cfg.Address),
		api:         v1.NewAPI(c),
		timeout:     time.Duration(cfg.Timeout),
		retries:     cfg.Retries,
		logger:      logger.With(zap.String("provider", "prometheus"), zap.String("address", redact.URL(cfg.Address))),
		maxPoints:   MaxPointsPerRequest,
		backoffBase: backoffBase,
		backoffMax:  backoffMax,
	}, nil
}

// Ping runs the cheapest instant query there is (`1`) once, without retries: whether
// the server answers at all, for the daemon's startup check.
func (p *Provider) Ping(ctx context.Context) error {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	if _, _, _, err := p.api.Query(ctx, "1", time.Now()); err != nil {
		return fmt.Errorf("prometheus %s: %w", p.address, redact.Error(err))
	}
	return nil
}

// Query runs q.Text as a range query. Several series pool into the Series' streams; no
// match is an empty Series. Ranges longer than MaxPointsPerRequest steps are fetched in
// pieces on the same grid (start + k·step), so the answer is the one an unlimited server
// would give.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("prometheus %s: %w", p.address, err)
	}
	if q.Step < time.Millisecond {
		// Prometheus' resolution is the millisecond; a finer step would be rounded to 0.
		return metrics.Series{}, fmt.Errorf("prometheus %s: query: step must be >= 1ms, got %s", p.address, q.Step)
	}
	ranges := split(q.Start, q.End, q.Step, p.maxPoints)
	total := int(q.End.Sub(q.Start)/q.Step) + 1

	var out metrics.Series
	// With several pieces, a series is found again in each by its label set.
	var index map[string]int
	if len(ranges) > 1 {
		index = make(map[string]int)
	}
	for _, r := range ranges {
		m, warnings, err := p.queryRange(ctx, q.Text, r)
		if err != nil {
			return metrics.Series{}, err
		}
		out.Warnings = appendNew(out.Warnings, warnings...)
		appendMatrix(&out, index, m, total)
	}
	return out, nil
}

// split cuts [start, end] into ranges of at most maxPoints points each, all on the grid
// start + k·step, so that no timestamp is fetched twice or skipped.
func split(start, end time.Time, step time.Duration, maxPoints int) []v1.Range {
	span := time.Duration(maxPoints-1) * step
	var out []v1.Range
	for s := start; !s.After(end); s = s.Add(span + step) {
		e := s.Add(span)
		if e.After(end) {
			e = end
		}
		out = append(out, v1.Range{Start: s, End: e, Step: step})
	}
	return out
}

// appendMatrix converts m into out's streams. index (nil for a single piece) maps a label
// set to its stream so later pieces extend it; total sizes the point slices once.
func appendMatrix(out *metrics.Series, index map[string]int, m model.Matrix, total int) {
	for _, ss := range m {
		if index != nil {
			key := ss.Metric.String()
			if i, ok := index[key]; ok {
				out.Streams[i].Points = appendPoints(out.Streams[i].Points, ss.Values)
				continue
			}
			index[key] = len(out.Streams)
		}
		labels := make(map[string]string, len(ss.Metric))
		for k, v := range ss.Metric {
			labels[string(k)] = string(v)
		}
		n := len(ss.Values)
		if index != nil {
			n = total
		}
		out.Streams = append(out.Streams, metrics.Stream{
			Labels: labels,
			Points: appendPoints(make([]metrics.Point, 0, n), ss.Values),
		})
	}
}

func appendPoints(dst []metrics.Point, vs []model.SamplePair) []metrics.Point {
	for _, v := range vs {
		dst = append(dst, metrics.Point{T: int64(v.Timestamp), V: float64(v.Value)})
	}
	return dst
}

// queryRange runs one range request, retrying transient failures with jittered
// exponential backoff until p.retries is spent or ctx ends.
func (p *Provider) queryRange(ctx context.Context, text string, r v1.Range) (model.Matrix, []string, error) {
	for attempt := 0; ; attempt++ {
		m, warnings, err := p.attempt(ctx, text, r)
		if err == nil {
			return m, warnings, nil
		}
		if ctx.Err() != nil {
			return nil, nil, p.wrap(text, attempt+1, fmt.Errorf("%w (%w)", ctx.Err(), err))
		}
		if !retryable(err) || attempt >= p.retries {
			return nil, nil, p.wrap(text, attempt+1, err)
		}
		wait := p.backoff(attempt)
		p.logger.Warn("query failed, retrying",
			zap.Int("attempt", attempt+1), zap.Duration("backoff", wait), zap.Error(redact.Error(err)))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, p.wrap(text, attempt+1, fmt.Errorf("%w (%w)", ctx.Err(), err))
		case <-t.C:
		}
	}
}

// attempt is one HTTP request bounded by p.timeout.
func (p *Provider) attempt(ctx context.Context, text string, r v1.Range) (model.Matrix, []string, error) {
	actx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, warnings, infos, err := p.api.QueryRange(actx, text, r, v1.WithTimeout(p.timeout))
	if err != nil {
		if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			return nil, nil, &timeoutError{after: p.timeout, err: err}
		}
		return nil, nil, err
	}
	var notes []string
	notes = append(notes, warnings...)
	for _, info := range infos {
		notes = append(notes, "info: "+info)
	}
	switch v := v.(type) {
	case model.Matrix:
		return v, notes, nil
	case nil:
		return nil, notes, nil
	default:
		return nil, nil, &v1.Error{Type: v1.ErrBadResponse, Msg: fmt.Sprintf("range query returned a %s, want a matrix", v.Type())}
	}
}

// timeoutError is one request running past the configured timeout (retried).
type timeoutError struct {
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no answer within timeout %s: %v", e.after, e.err)
}

func (e *timeoutError) Unwrap() error { return e.err }

// retryable says whether a failed request may succeed if sent again: network errors,
// timeouts and 5xx may; a query Prometheus rejected (bad_data, execution), any other 4xx,
// a malformed answer, or a certificate that does not verify will not.
func retryable(err error) bool {
	var te *timeoutError
	if errors.As(err, &te) {
		return true
	}
	var apiErr *v1.Error
	if errors.As(err, &apiErr) {
		return apiErr.Type == v1.ErrServer || apiErr.Type == v1.ErrTimeout
	}
	var certErr *tls.CertificateVerificationError
	return !errors.As(err, &certErr)
}

// backoff is the wait before retry number attempt+1: exponential from backoffBase, capped
// at backoffMax, with the upper half jittered so that daemons don't retry in lockstep.
func (p *Provider) backoff(attempt int) time.Duration {
	d := p.backoffMax
	if attempt < 30 {
		d = min(p.backoffBase<<attempt, p.backoffMax)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// wrap names the server and the query and, for an HTTP error, adds the body it sent.
func (p *Provider) wrap(text string, attempts int, err error) error {
	var apiErr *v1.Error
	detail := ""
	if errors.As(err, &apiErr) && apiErr.Detail != "" {
		detail = strings.TrimSpace(apiErr.Detail)
		if len(detail) > maxDetail {
			detail = detail[:maxDetail] + "…"
		}
		detail = ": " + detail
	}
	tries := ""
	if attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", attempts)
	}
	// The client's errors quote the request's URL, credentials included.
	return redact.Error(fmt.Errorf("prometheus %s: query %s%s: %w%s", p.address, shorten(text), tries, err, detail))
}

func shorten(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// appendNew appends the strings of add that dst does not hold yet: every piece of a split
// range repeats the same warning.
func appendNew(dst []string, add ...string) []string {
next:
	for _, a := range add {
		for _, d := range dst {
			if a == d {
				continue next
			}
		}
		dst = append(dst, a)
	}
	return dst
}
