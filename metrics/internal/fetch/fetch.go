// Package fetch is what the HTTP/JSON metrics providers share: sending one query's
// request with retries on transient failures, and turning a failed answer into one line
// that says what the server said. It never logs a request's headers or body.
package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/redact"
)

// MaxErrorText is how much of a server's error text is kept.
const MaxErrorText = 300

// Client sends a provider's requests. Its zero Backoff means 500ms.
type Client struct {
	HTTP    *http.Client
	Retries int
	Backoff time.Duration
	// MaxAnswer bounds an answer held in memory.
	MaxAnswer int64
	// AuthHint is added to a 401 or 403 (e.g. "check api_key_file").
	AuthHint string
	Logger   *zap.Logger
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	Code int
	Text string
	hint string
}

func (e *StatusError) Error() string {
	if e.hint != "" {
		return fmt.Sprintf("HTTP %d: %s (%s)", e.Code, e.Text, e.hint)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Text)
}

// Do sends the request newReq builds until it is answered with a 2xx, retrying network
// errors, 429 and 5xx up to Retries times with a jittered exponential backoff, and
// returns the answer's body.
func (c *Client) Do(ctx context.Context, newReq func(context.Context) (*http.Request, error)) ([]byte, error) {
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		body, retry, err := c.attempt(ctx, newReq)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		if !retry || attempt > c.Retries {
			if retry && attempt > 1 {
				return nil, fmt.Errorf("%w (attempts: %d)", err, attempt)
			}
			return nil, err
		}
		wait := backoff << min(attempt-1, 5)
		wait = wait/2 + rand.N(wait/2+1)
		if c.Logger != nil {
			c.Logger.Warn("query failed, retrying", zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (while waiting to retry: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Client) attempt(ctx context.Context, newReq func(context.Context) (*http.Request, error)) (body []byte, retry bool, err error) {
	req, err := newReq(ctx)
	if err != nil {
		return nil, false, redact.Error(err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, true, redact.Error(err)
	}
	defer resp.Body.Close()
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = 256 << 20
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, true, fmt.Errorf("read answer (HTTP %d): %w", resp.StatusCode, redact.Error(err))
	}
	if int64(len(body)) > limit {
		return nil, false, fmt.Errorf("answer larger than %d bytes; narrow the query", limit)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, false, nil
	}
	se := &StatusError{Code: resp.StatusCode, Text: ErrorText(body)}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		se.hint = c.AuthHint
	}
	return nil, resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, se
}

var (
	htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	htmlTag   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// ErrorText is what a failed answer says, on one line: the message of a JSON error
// ({"error": "…"}, {"error": {"message": "…"}}, {"message": "…"}, {"errors": [{"message":
// "…"}]}), an HTML page's title and text, or the body's start.
func ErrorText(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return "no body"
	}
	if b[0] == '{' {
		if s := jsonMessage(b); s != "" {
			return Line(s)
		}
	}
	if b[0] == '<' {
		s := htmlTag.ReplaceAllString(string(b), " ")
		if m := htmlTitle.FindSubmatch(b); m != nil {
			title := Line(string(m[1]))
			rest := strings.TrimSpace(strings.Replace(Line(s), title, "", 1))
			if rest == "" {
				return title
			}
			return Line(title + ": " + rest)
		}
		return Line(s)
	}
	return Line(string(b))
}

func jsonMessage(b []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil && s != "" {
		return s
	}
	var inner struct {
		Message string `json:"message"`
		Status  string `json:"status"`
	}
	if json.Unmarshal(e.Error, &inner) == nil && inner.Message != "" {
		if inner.Status != "" {
			return inner.Status + ": " + inner.Message
		}
		return inner.Message
	}
	if e.Message != "" {
		return e.Message
	}
	var msgs []string
	for _, m := range e.Errors {
		if m.Message != "" {
			msgs = append(msgs, m.Message)
		}
	}
	return strings.Join(msgs, "; ")
}

// Line puts s on one line and cuts it to MaxErrorText bytes (on a rune boundary).
func Line(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= MaxErrorText {
		return s
	}
	cut := MaxErrorText
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// IsStatus reports whether err is a StatusError with that code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}
