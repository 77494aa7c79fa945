package graphite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/redact"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/fetch"
)

const maxAnswer = 64 << 20

// Provider queries graphite-web's render API. It is safe for concurrent use.
type Provider struct {
	renderURL string
	fetch     fetch.Client
	logger    *zap.Logger
}

var _ metrics.Provider = (*Provider)(nil)

// New checks cfg and builds the HTTP client once.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("graphite: config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	client, err := cfg.Client("graphite")
	if err != nil {
		return nil, fmt.Errorf("graphite: %w", err)
	}
	logger = logger.With(zap.String("provider", "graphite"), zap.String("address", redact.URL(cfg.Address)))
	return &Provider{
		renderURL: strings.TrimRight(cfg.Address, "/") + "/render",
		logger:    logger,
		fetch:     fetch.Client{HTTP: client, Retries: cfg.Retries, MaxAnswer: maxAnswer, AuthHint: "check basic_auth or authorization", Logger: logger},
	}, nil
}

// SetBackoff sets the first retry's wait (tests use a short one).
func (p *Provider) SetBackoff(d time.Duration) { p.fetch.Backoff = d }

// StepAlignment is the grid Graphite's points are on: whisper stores them on multiples
// of the archive's resolution since the epoch, and graphite-web consolidates
// (maxDataPoints) and summarize() buckets (without alignToFrom) on multiples of their
// width since the epoch, so the counts and histogram judges need a canary whose steps
// start on a multiple of the step (the scheduler refuses others, naming the provider).
func (p *Provider) StepAlignment(step time.Duration) time.Duration { return step }

// WholeSteps says why the counts and histogram judges are not run on Graphite yet:
// graphite-web's from is exclusive and summarize() labels a bucket by its start, so a
// window's last step is cut at its end and the rest of it is never read (a steady 60 a
// minute reads 59, 60, 60, 1), and maxDataPoints consolidates a raw series to points
// that are not the step.
func (p *Provider) WholeSteps() error {
	return errors.New("graphite does not answer each step's counts whole yet (summarize() labels a bucket by its start, so a window's last step is cut at its end; " +
		"maxDataPoints consolidates raw series to points that are not the step): the counts and histogram judges are not run on it; use a window judge (mannwhitney, ratio, threshold)")
}

// RenderParams are the render API's parameters for one query: the target, the window in
// unix seconds, JSON, and maxDataPoints = the number of steps in the window, so that
// finer data is consolidated (by the series' consolidateBy, average by default) to about
// one point a step, as a dashboard of that width would show it.
func RenderParams(q metrics.Query) url.Values {
	steps := int64(q.End.Sub(q.Start)/q.Step) + 1
	return url.Values{
		"target":        {q.Text},
		"from":          {strconv.FormatInt(q.Start.Unix(), 10)},
		"until":         {strconv.FormatInt(q.End.Unix(), 10)},
		"format":        {"json"},
		"maxDataPoints": {strconv.FormatInt(steps, 10)},
	}
}

// Query renders q's target over [q.Start, q.End].
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("graphite: %w", err)
	}
	form := RenderParams(q).Encode()
	body, err := p.fetch.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		// POST: a target can be longer than a URL may be; render takes a form too.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.renderURL, strings.NewReader(form))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return req, nil
	})
	if err != nil {
		return metrics.Series{}, fmt.Errorf("graphite: target %q: %w", q.Text, err)
	}
	s, err := decode(body, q.Start.UnixMilli(), q.End.UnixMilli())
	if err != nil {
		return metrics.Series{}, fmt.Errorf("graphite: target %q: %w", q.Text, err)
	}
	p.logger.Debug("graphite query done", zap.String("target", q.Text), zap.Int("streams", len(s.Streams)), zap.Int("points", s.Len()))
	return s, nil
}
