package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestURL(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"userinfo", "http://admin:SECRET@prom:9090/api", "http://<secret>@prom:9090/api"},
		{"user only", "https://admin@prom", "https://<secret>@prom"},
		{"influxdb password parameter", "http://h:8086/query?u=canaryd&p=PW&db=x", "http://h:8086/query?u=canaryd&p=<secret>&db=x"},
		{"at in password", "http://u:p@ss@host/x", "http://<secret>@host/x"},
		{"query secrets", "http://h/q?api_key=K1&query=up&X-Auth-Token=T&sig=S#frag", "http://h/q?api_key=<secret>&query=up&X-Auth-Token=<secret>&sig=<secret>#frag"},
		{"escaped name", "http://h/?api%5Fkey=K", "http://h/?api%5Fkey=<secret>"},
		{"nothing secret", "http://127.0.0.1:9090/api/v1/query_range?query=up&step=15", "http://127.0.0.1:9090/api/v1/query_range?query=up&step=15"},
		{"not a URL", "prom:9090", "prom:9090"},
		{"at in path", "http://host/a@b", "http://host/a@b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := URL(c.in); got != c.want {
				t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// An HTTP client's error quotes the whole URL, credentials included: Error hides them
// and keeps the error's identity.
func TestErrorFromHTTPClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://admin:SECRET@127.0.0.1:1/api/v1/query?token=TOK", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = http.DefaultClient.Do(req)
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	wrapped := fmt.Errorf("prometheus: %w", err)
	if !strings.Contains(wrapped.Error(), "SECRET") && !strings.Contains(wrapped.Error(), "TOK") {
		t.Logf("the client no longer quotes the URL: %v", wrapped)
	}
	r := Error(wrapped)
	if s := r.Error(); strings.Contains(s, "SECRET") || strings.Contains(s, "TOK") || strings.Contains(s, "admin") {
		t.Errorf("redacted error still has a credential: %s", s)
	}
	if !errors.Is(r, err) {
		t.Error("errors.Is lost the original")
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}
