package actuators

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStatusError(t *testing.T) {
	cases := []struct {
		name       string
		code       int
		status     string
		want       string // the error, "" for none
		retry      bool
		retryAfter time.Duration
	}{
		{name: "2xx is done", code: 202, status: "202 Accepted"},
		{name: "429 is retried after the wait", code: 429, status: "429 Too Many Requests", want: "POST https://x/: 429 Too Many Requests", retry: true, retryAfter: time.Minute},
		{name: "5xx is retried", code: 503, status: "503 Service Unavailable", want: "POST https://x/: 503 Service Unavailable", retry: true, retryAfter: time.Minute},
		{name: "408 is retried", code: 408, status: "408 Request Timeout", want: "POST https://x/: 408 Request Timeout", retry: true, retryAfter: time.Minute},
		{name: "4xx is final", code: 400, status: "400 Bad Request", want: "POST https://x/: 400 Bad Request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := Result{Status: tc.code, Output: "body"}
			err := StatusError("POST https://x/", res, tc.status, time.Minute)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if IsRetryable(err) != tc.retry || RetryAfterOf(err) != tc.retryAfter || ResultOf(err).Output != "body" {
				t.Errorf("retry %v after %s with %+v, want retry %v after %s with the result", IsRetryable(err), RetryAfterOf(err), ResultOf(err), tc.retry, tc.retryAfter)
			}
		})
	}
}

func TestTransportError(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{name: "no answer", ctx: t.Context(), err: errors.New("connection refused"), want: "POST https://x/: connection refused"},
		{name: "cancelled by canaryd", ctx: cancelled, err: errors.New("connection refused"), want: "POST https://x/: context canceled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := TransportError(tc.ctx, "POST https://x/", tc.err)
			if err.Error() != tc.want || !IsRetryable(err) {
				t.Errorf("%v (retryable %v), want %q, retryable", err, IsRetryable(err), tc.want)
			}
		})
	}
}
