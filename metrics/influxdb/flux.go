package influxdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	commoncfg "github.com/prometheus/common/config"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/redact"
	"github.com/canaryd/canaryd/metrics"
)

// The window's names a Flux script reads: the fields of the record v the provider
// defines before the script, named as InfluxDB's UI and Grafana name theirs.
const (
	FluxRangeStart   = "v.timeRangeStart"
	FluxRangeStop    = "v.timeRangeStop"
	FluxWindowPeriod = "v.windowPeriod"
	// FluxWindowOffset is how far the canary's step grid is from the epoch's: windows
	// with this offset end exactly at start, start+step, …, end.
	FluxWindowOffset = "v.windowOffset"
)

// newFlux builds a provider for language flux on the official client, its HTTP client
// built from http_config with the token as its Authorization header.
func newFlux(cfg Config, logger *zap.Logger) (*Provider, error) {
	h := cfg.HTTP
	hc := &h.HTTPClientConfig
	switch {
	case cfg.Token != "":
		hc.Authorization = &commoncfg.Authorization{Type: "Token", Credentials: cfg.Token}
	case cfg.TokenFile != "":
		hc.Authorization = &commoncfg.Authorization{Type: "Token", CredentialsFile: cfg.TokenFile}
	case cfg.TokenEnv != "":
		tok := strings.TrimSpace(os.Getenv(cfg.TokenEnv))
		if tok == "" {
			return nil, fmt.Errorf("influxdb: token_env: $%s is not set", cfg.TokenEnv)
		}
		hc.Authorization = &commoncfg.Authorization{Type: "Token", Credentials: commoncfg.Secret(tok)}
	}
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("influxdb: http_config: %w", err)
	}
	client, err := h.Client("influxdb")
	if err != nil {
		return nil, fmt.Errorf("influxdb: %w", err)
	}
	client.Transport = limitedAnswers{next: client.Transport, max: maxAnswer}
	// The token is http_config's Authorization (so token_file is read at each request):
	// the client is given none, and sets no header of its own.
	opts := influxdb2.DefaultOptions().SetHTTPClient(client).SetApplicationName("canaryd")
	c := influxdb2.NewClientWithOptions(cfg.Address, "", opts)
	return &Provider{
		cfg:     cfg,
		flux:    c.QueryAPI(cfg.Org),
		logger:  logger.With(zap.String("provider", "influxdb"), zap.String("language", LanguageFlux), zap.String("address", redact.URL(cfg.Address)), zap.String("org", cfg.Org)),
		backoff: 500 * time.Millisecond,
	}, nil
}

// RenderFlux defines the window for a Flux script: the record
//
//	v = {timeRangeStart: <start − step>, timeRangeStop: <end>, windowPeriod: <step>,
//	     windowOffset: <start modulo step>}
//
// before its first statement (after its package clause and imports, which Flux wants
// first), on that statement's line so that the server's error positions keep their line
// numbers (a statement that starts with neither a letter nor _, such as `(`, gets a line
// of its own: the record would read as called). aggregateWindow labels each window by its stop, so the script's points are at
// start, start+step, …, end, each over the step that ends there, as a Prometheus rate's
// are; range's stop is exclusive. A script that does not read both bounds is refused: it
// would not read the window.
func RenderFlux(text string, start, end time.Time, step time.Duration) (string, error) {
	for _, name := range []string{FluxRangeStart, FluxRangeStop} {
		if !strings.Contains(text, name) {
			return "", fmt.Errorf("query has no %s: it would not read the window (write range(start: %s, stop: %s))", name, FluxRangeStart, FluxRangeStop)
		}
	}
	offset := time.Duration(start.UnixNano() % int64(step))
	if offset < 0 {
		offset += step
	}
	v := fmt.Sprintf("v = {timeRangeStart: %s, timeRangeStop: %s, windowPeriod: %s, windowOffset: %s}",
		start.Add(-step).UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano), fluxDuration(step), fluxDuration(offset))
	at := 0
	for rest := text; rest != ""; {
		line, next, _ := strings.Cut(rest, "\n")
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "//") && !strings.HasPrefix(t, "import ") && !strings.HasPrefix(t, "package ") {
			break
		}
		at += len(line) + 1
		rest = next
	}
	if at >= len(text) {
		return text + "\n" + v + "\n", nil
	}
	rest := strings.TrimLeft(text[at:], " \t")
	if c := rest[0]; c == '_' || unicode.IsLetter(rune(c)) {
		return text[:at] + v + " " + rest, nil
	}
	return text[:at] + v + "\n" + text[at:], nil
}

// fluxDuration writes d as a Flux duration literal in the largest exact unit.
func fluxDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// queryFlux runs q's Flux script over the window and decodes its tables.
func (p *Provider) queryFlux(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	text, err := RenderFlux(q.Text, q.Start, q.End, q.Step)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("influxdb: query %q: %w", q.Text, err)
	}
	var s metrics.Series
	err = p.retrying(ctx, func() (bool, error) {
		res, err := p.flux.Query(ctx, text)
		if err != nil {
			retry, err := fluxError(err)
			return retry, p.timedOut(err)
		}
		s, err = decodeFlux(res)
		// A cut stream (the connection or the timeout) is worth another try; an answer
		// that is not annotated CSV, an error table or a table of the wrong shape is not.
		var ne net.Error
		return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF), p.timedOut(err)
	})
	if err != nil {
		return metrics.Series{}, fmt.Errorf("influxdb: flux query %q: %w", q.Text, err)
	}
	p.logger.Debug("influxdb flux query done", zap.String("query", q.Text), zap.Int("streams", len(s.Streams)), zap.Int("points", s.Len()))
	return s, nil
}

// timedOut says which timeout ended a request that timed out.
func (p *Provider) timedOut(err error) error {
	var ne net.Error
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w (timeout: %s)", err, time.Duration(p.cfg.Timeout))
	}
	return err
}

// fluxError turns the client's failure into what the server said, on one line, and
// whether it is worth another try (the network, 429, 5xx).
func fluxError(err error) (retry bool, _ error) {
	var he *influxhttp.Error
	if !errors.As(err, &he) || he.StatusCode == 0 {
		return true, redact.Error(err)
	}
	status := strconv.Itoa(he.StatusCode)
	var parts []string
	// The client fills Code with the status line ("502 Bad Gateway") when the body is
	// not InfluxDB's {"code", "message"}: HTTP <code> says it already.
	if he.Code != "" && !strings.HasPrefix(he.Code, status) {
		parts = append(parts, he.Code)
	}
	if he.Message != "" {
		parts = append(parts, he.Message)
	}
	text := strings.Join(parts, ": ")
	if text == "" {
		// InfluxDB 1.8 answers a 401 with {"error"} alone, which the client does not read.
		text = http.StatusText(he.StatusCode)
	}
	if he.Err != nil {
		text = "unreadable error answer: " + he.Err.Error()
	}
	e := fmt.Errorf("HTTP %d: %s", he.StatusCode, errorText([]byte(text)))
	switch {
	case he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden:
		return false, fmt.Errorf("%w (check token, token_file or token_env)", e)
	case he.StatusCode == http.StatusTooManyRequests || he.StatusCode >= 500:
		return true, e
	}
	return false, e
}

// limitedAnswers cuts an answer's body at max bytes, so that a script that returns far
// more than a canary needs fails instead of filling memory.
type limitedAnswers struct {
	next http.RoundTripper
	max  int64
}

func (l limitedAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: l.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("answer larger than %d bytes; narrow the query", maxAnswer)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
