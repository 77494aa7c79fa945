package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/template"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/redact"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/internal/fetch"
)

const maxAnswer = 64 << 20

// Provider queries one HTTP/JSON service. It is safe for concurrent use.
type Provider struct {
	cfg     Config
	c       compiled
	headers http.Header
	fetch   fetch.Client
	logger  *zap.Logger
}

var _ metrics.Provider = (*Provider)(nil)

// New checks cfg, reads headers_env, and builds the HTTP client once.
func New(cfg Config, logger *zap.Logger) (*Provider, error) {
	c, es := cfg.compile()
	if err := es.Err(); err != nil {
		return nil, fmt.Errorf("web: config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	h := http.Header{}
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	for k, env := range cfg.HeadersEnv {
		v := os.Getenv(env)
		if v == "" {
			return nil, fmt.Errorf("web: headers_env.%s: $%s is not set", k, env)
		}
		h.Set(k, v)
	}
	if cfg.Body != "" {
		ct := cfg.ContentType
		if ct == "" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
	}
	if h.Get("Accept") == "" {
		h.Set("Accept", "application/json")
	}
	client, err := cfg.Client("web")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	// The URL is a template: log its literal start only.
	base := cfg.URL
	if i := strings.Index(base, "{{"); i >= 0 {
		base = base[:i]
	}
	logger = logger.With(zap.String("provider", "web"), zap.String("url", redact.URL(base)))
	return &Provider{
		cfg: cfg, c: c, headers: h, logger: logger,
		fetch: fetch.Client{HTTP: client, Retries: cfg.Retries, MaxAnswer: maxAnswer, AuthHint: "check authorization, http_headers or headers_env", Logger: logger},
	}, nil
}

// SetBackoff sets the first retry's wait (tests use a short one).
func (p *Provider) SetBackoff(d time.Duration) { p.fetch.Backoff = d }

// Query renders the url and body for q's window and reads the points from the answer.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("web: %w", err)
	}
	d := Data{Query: q.Text, Start: q.Start.UTC(), End: q.End.UTC(), Step: q.Step}
	u, err := execute(p.c.url, d)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("web: query %q: url: %w", q.Text, err)
	}
	var body string
	if p.c.body != nil {
		if body, err = renderBody(p.c.body, p.kind(), d); err != nil {
			return metrics.Series{}, fmt.Errorf("web: query %q: body: %w", q.Text, err)
		}
	}
	answer, err := p.fetch.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, p.cfg.Method, u, r)
		if err != nil {
			return nil, err
		}
		for k, v := range p.headers {
			req.Header[k] = v
		}
		return req, nil
	})
	if err != nil {
		return metrics.Series{}, fmt.Errorf("web: query %q: %w", q.Text, err)
	}
	s, err := p.decode(answer)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("web: query %q: %w", q.Text, err)
	}
	p.logger.Debug("web query done", zap.String("query", q.Text), zap.Int("streams", len(s.Streams)), zap.Int("points", s.Len()))
	return s, nil
}

func (p *Provider) kind() kind {
	if p.cfg.ContentType == "application/x-www-form-urlencoded" {
		return kindForm
	}
	return kindJSON
}

// renderBody renders a body and, for JSON, checks that it is JSON: a template that does
// not write JSON is the config's mistake, said before the request is sent.
func renderBody(t *template.Template, k kind, d Data) (string, error) {
	s, err := execute(t, d)
	if err != nil {
		return "", err
	}
	if k == kindJSON {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return "", fmt.Errorf("is not JSON: %w", err)
		}
	}
	return s, nil
}
