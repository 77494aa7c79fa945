package cloudwatch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// maxErrorBody is how much of a failed answer is kept to explain it.
const maxErrorBody = 4096

// maxAnswer bounds a successful answer held in memory (a full page of 100,800 points is
// about 3 MB of JSON).
const maxAnswer = 64 << 20

// errBody holds the last failed HTTP answer of one query. The SDK reports a body it cannot
// decode (an XML or HTML error from a proxy, or from an emulator) only as "deserialization
// failed"; keeping the body lets the error say what the server said.
type errBody struct {
	mu     sync.Mutex
	status int
	body   []byte
}

type errBodyKey struct{}

// bufferAnswers wraps the SDK's HTTP client: it reads every answer whole, and copies a
// non-2xx body into the query's errBody (if its context has one) before handing it on.
type bufferAnswers struct{ next aws.HTTPClient }

func (k bufferAnswers) Do(req *http.Request) (*http.Response, error) {
	resp, err := k.next.Do(req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode < 300 {
		// Read the whole answer here, while the request's context is surely alive: with
		// the SDK's AWS JSON 1.0 protocol, a large answer read later sometimes found its
		// connection already closed ("use of closed network connection").
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		resp.Body.Close()
		if rerr != nil {
			return nil, fmt.Errorf("read answer: %w", rerr)
		}
		if len(b) == maxAnswer {
			return nil, fmt.Errorf("answer larger than %d bytes; narrow the query", maxAnswer)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp, nil
	}
	h, _ := req.Context().Value(errBodyKey{}).(*errBody)
	if h == nil {
		return resp, nil
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	if rerr == nil {
		h.mu.Lock()
		h.status, h.body = resp.StatusCode, b
		h.mu.Unlock()
	}
	return resp, nil
}

func withErrBody(ctx context.Context) (context.Context, *errBody) {
	h := &errBody{}
	return context.WithValue(ctx, errBodyKey{}, h), h
}

var (
	xmlCode    = regexp.MustCompile(`<Code>([^<]{1,200})</Code>`)
	xmlMessage = regexp.MustCompile(`<Message>([^<]{1,1000})</Message>`)
	spaces     = regexp.MustCompile(`\s+`)
)

// String is the server's answer in one line: an AWS XML error's code and message, or the
// body's start.
func (h *errBody) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status == 0 {
		return ""
	}
	if c := xmlCode.FindSubmatch(h.body); c != nil {
		msg := ""
		if m := xmlMessage.FindSubmatch(h.body); m != nil {
			msg = ": " + string(m[1])
		}
		return fmt.Sprintf("HTTP %d: %s%s", h.status, c[1], msg)
	}
	s := strings.TrimSpace(spaces.ReplaceAllString(string(h.body), " "))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("HTTP %d: %s", h.status, s)
}
