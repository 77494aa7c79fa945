package influxdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/redact"
	"github.com/canaryd/canaryd/metrics"
)

// The placeholders a query's template leaves for the provider.
const (
	TimeFilter = "$timeFilter"
	Step       = "$step"
)

// maxAnswer bounds an answer read into memory; maxErrorText a server's error text kept.
const (
	maxAnswer    = 256 << 20
	maxErrorText = 512
)

// Provider queries InfluxDB 1.x's /query endpoint (InfluxQL) or /api/v2/query (Flux). It
// is safe for concurrent use.
type Provider struct {
	cfg      Config
	client   *http.Client
	queryURL string
	// flux is the official client's query API, for language flux.
	flux    api.QueryAPI
	logger  *zap.Logger
	backoff time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// New checks cfg and builds the HTTP client once.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("influxdb: config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if cfg.Language == LanguageFlux {
		return newFlux(cfg, logger)
	}
	client, err := cfg.Client("influxdb")
	if err != nil {
		return nil, fmt.Errorf("influxdb: %w", err)
	}
	return &Provider{
		cfg:      cfg,
		client:   client,
		queryURL: strings.TrimRight(cfg.Address, "/") + "/query",
		logger:   logger.With(zap.String("provider", "influxdb"), zap.String("address", redact.URL(cfg.Address)), zap.String("database", cfg.Database)),
		backoff:  500 * time.Millisecond,
	}, nil
}

// SetBackoff sets the first retry's wait (tests use a short one).
func (p *Provider) SetBackoff(d time.Duration) { p.backoff = d }

// stepBuckets finds a GROUP BY on the step, time($step), which Render puts on the canary's
// step grid.
var stepBuckets = regexp.MustCompile(`(?i)\btime\(\s*\$step\s*\)`)

// OnStepGrid reports whether a rendered query's buckets are the step's, GROUP BY
// time($step): Render then puts them on the canary's grid and Query labels each bucket
// by its end.
func OnStepGrid(text string) bool { return stepBuckets.MatchString(text) }

// Render fills a query's placeholders for one window. A query that groups by
// time($step) gets buckets on the canary's grid, start + k·step: time($step) becomes
// time(<step>, <start modulo step>) (InfluxDB aligns buckets to the epoch otherwise), and
// $timeFilter covers the steps that end at start … end, [start − step, last), last the
// grid's last point at or before end, since InfluxDB labels a bucket by its start and
// Query relabels it by its end. Otherwise $timeFilter is [start, end].
func Render(text string, start, end time.Time, step time.Duration) (string, error) {
	if !strings.Contains(text, TimeFilter) {
		return "", fmt.Errorf("query has no %s: it would read the whole history (write WHERE … AND %s)", TimeFilter, TimeFilter)
	}
	filter := fmt.Sprintf("time >= %dms AND time <= %dms", start.UnixMilli(), end.UnixMilli())
	if OnStepGrid(text) && step > 0 {
		offset := time.Duration(start.UnixNano() % int64(step))
		if offset < 0 {
			offset += step
		}
		group := "time(" + duration(step) + ")"
		if offset != 0 {
			group = "time(" + duration(step) + ", " + duration(offset) + ")"
		}
		last := start.Add(end.Sub(start) / step * step)
		filter = fmt.Sprintf("time >= %dms AND time < %dms", start.Add(-step).UnixMilli(), last.UnixMilli())
		text = stepBuckets.ReplaceAllLiteralString(text, group)
	}
	return strings.NewReplacer(TimeFilter, filter, Step, duration(step)).Replace(text), nil
}

// duration writes d as an InfluxQL duration literal in the largest exact unit.
func duration(d time.Duration) string {
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"u", time.Microsecond}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// Query runs q's InfluxQL over [q.Start, q.End] and returns every series' value columns.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("influxdb: %w", err)
	}
	if p.flux != nil {
		return p.queryFlux(ctx, q)
	}
	text, err := Render(q.Text, q.Start, q.End, q.Step)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("influxdb: query %q: %w", q.Text, err)
	}
	form := url.Values{"db": {p.cfg.Database}, "q": {text}, "epoch": {"ms"}}
	if p.cfg.RetentionPolicy != "" {
		form.Set("rp", p.cfg.RetentionPolicy)
	}
	body, err := p.do(ctx, form.Encode())
	if err != nil {
		return metrics.Series{}, fmt.Errorf("influxdb: query %q: %w", text, err)
	}
	s, err := decode(body)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("influxdb: query %q: %w", text, err)
	}
	if OnStepGrid(q.Text) {
		// InfluxDB labels a bucket by its start; the step it holds ends one step later,
		// where a Prometheus rate or Flux's aggregateWindow puts it.
		for i := range s.Streams {
			for j := range s.Streams[i].Points {
				s.Streams[i].Points[j].T += q.Step.Milliseconds()
			}
		}
	}
	p.logger.Debug("influxdb query done", zap.String("query", text), zap.Int("streams", len(s.Streams)), zap.Int("points", s.Len()))
	return s, nil
}

// do posts the query until it is answered, retrying network errors and 5xx.
func (p *Provider) do(ctx context.Context, form string) ([]byte, error) {
	var body []byte
	err := p.retrying(ctx, func() (retry bool, err error) {
		body, retry, err = p.attempt(ctx, form)
		return retry, err
	})
	return body, err
}

// retrying calls attempt until it succeeds, fails for good, or has failed transiently
// Retries+1 times, waiting a jittered exponential backoff between attempts.
func (p *Provider) retrying(ctx context.Context, attempt func() (retry bool, err error)) error {
	for n := 1; ; n++ {
		retry, err := attempt()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		if !retry || n > p.cfg.Retries {
			if retry {
				return fmt.Errorf("%w (attempts: %d)", err, n)
			}
			return err
		}
		wait := p.backoff << min(n-1, 5)
		wait = wait/2 + rand.N(wait/2+1)
		p.logger.Warn("influxdb query failed, retrying", zap.Int("attempt", n), zap.Duration("wait", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting to retry: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

func (p *Provider) attempt(ctx context.Context, form string) (body []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.queryURL, strings.NewReader(form))
	if err != nil {
		return nil, false, redact.Error(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, true, redact.Error(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, true, fmt.Errorf("read answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(body) > maxAnswer {
		return nil, false, fmt.Errorf("answer larger than %d bytes; narrow the query", maxAnswer)
	}
	if resp.StatusCode == http.StatusOK {
		return body, false, nil
	}
	msg := fmt.Sprintf("HTTP %d: %s", resp.StatusCode, errorText(body))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, false, fmt.Errorf("%s (check basic_auth or authorization)", msg)
	case resp.StatusCode >= 500:
		return nil, true, errors.New(msg)
	}
	return nil, false, errors.New(msg)
}

// errorText is InfluxDB's {"error": "…"}, or the body's start on one line.
func errorText(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.Join(strings.Fields(string(bytes.TrimSpace(body))), " ")
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	if s == "" {
		return "no body"
	}
	return s
}
