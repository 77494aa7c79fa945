package actuators

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/canaryd/canaryd/internal/redact"
)

// Headers every HTTP kind sends.
const (
	// HeaderIdempotencyKey carries Event.Key: the same on every attempt of one action,
	// including a retry after canaryd restarted, so a receiver can apply it once.
	HeaderIdempotencyKey = "Idempotency-Key"
	UserAgent            = "canaryd"
)

// DefaultOutputLimit bounds the response body or command output kept per attempt.
const DefaultOutputLimit = 16 << 10

// NewRequest builds an HTTP request with the headers every kind sends. header is applied
// after them, so a config may override Content-Type.
func NewRequest(ctx context.Context, method, url string, body []byte, key string, header map[string]string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", UserAgent)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(HeaderIdempotencyKey, key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req, nil
}

// Send makes req with client and turns the answer into a Result or an error that says
// whether a retry may help: 2xx is success; 408, 425, 429 and 5xx are worth retrying,
// as is a network error or a timeout; any other status is final (the request itself is
// wrong, and sending it again would not change that). At most limit bytes of the body are
// kept; the rest is drained (up to a bound) so the connection can be reused.
func Send(ctx context.Context, client *http.Client, req *http.Request, limit int) (Result, error) {
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	where := req.Method + " " + redactedURL(req)
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, TransportError(ctx, where, err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	res := Result{Status: resp.StatusCode, Output: Truncate(string(body), limit)}
	if err := StatusError(where, res, resp.Status, retryAfter(resp.Header.Get("Retry-After"), time.Now())); err != nil {
		return res, err
	}
	if rerr != nil {
		// The receiver accepted; a body cut short changes nothing about that.
		res.Output += fmt.Sprintf(" [reading the body: %v]", rerr)
	}
	return res, nil
}

// TransportError is the error of a request (named by where, "POST https://…") that got
// no answer: retryable, since the receiver said nothing; when canaryd itself cancelled
// it (shutting down) the cancellation, which is no verdict on the receiver.
func TransportError(ctx context.Context, where string, err error) error {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = ctx.Err()
	}
	return &Error{Retry: true, Err: fmt.Errorf("%s: %w", where, unwrapURLError(err))}
}

// StatusError classifies an answer by res.Status, as Send does for every kind: nil for
// a 2xx; 408, 425, 429 and 5xx retryable (after retryAfter, when the receiver said);
// any other status final. The error names the request (where) and the status line.
func StatusError(where string, res Result, status string, retryAfter time.Duration) error {
	switch code := res.Status; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		return &Error{Retry: true, RetryAfter: retryAfter, Result: res, Err: fmt.Errorf("%s: %s", where, status)}
	}
	return &Error{Result: res, Err: fmt.Errorf("%s: %s", where, status)}
}

// redactedURL hides a URL's path when the kind marked it secret (a Slack webhook URL is
// its own credential), and its password otherwise.
func redactedURL(req *http.Request) string {
	if v := req.Context().Value(secretURLKey{}); v != nil {
		return req.URL.Scheme + "://" + req.URL.Host + "/" + Secret
	}
	return redact.URL(req.URL.String())
}

type secretURLKey struct{}

// WithSecretURL marks the requests made under ctx as having a secret URL, so errors name
// only its host.
func WithSecretURL(ctx context.Context) context.Context {
	return context.WithValue(ctx, secretURLKey{}, true)
}

// unwrapURLError drops *url.Error's "Post \"URL\":" prefix, which would print a secret
// URL; the caller names the request itself.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. Zero when absent or
// unreadable; capped at an hour so a receiver cannot park an action for days.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

// MarshalJSON encodes v as JSON without escaping <, > and & (request bodies are not
// HTML, and the audit log shows them as sent).
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
