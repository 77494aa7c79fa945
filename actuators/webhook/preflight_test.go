package webhook

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/actuators"
)

// The preflight_url is sent as GET or HEAD with the webhook's headers and no body; a
// 2xx passes, anything else fails with the answer.
func TestWebhookPreflight(t *testing.T) {
	cases := []struct {
		name   string
		method string
		status int
		want   string
	}{
		{name: "GET 204", method: "", status: http.StatusNoContent},
		{name: "HEAD 200", method: "head", status: http.StatusOK},
		{name: "GET 503", method: "GET", status: http.StatusServiceUnavailable, want: "503 Service Unavailable"},
		{name: "GET 403", method: "GET", status: http.StatusForbidden, want: "403 Forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []*http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = append(got, r)
				if r.ContentLength > 0 {
					t.Errorf("a preflight sent a body")
				}
				w.WriteHeader(tc.status)
				w.Write([]byte("deploy service says " + http.StatusText(tc.status)))
			}))
			t.Cleanup(srv.Close)
			c := DefaultConfig()
			c.URL = srv.URL + "/abort/{{ .Vars.app }}"
			c.PreflightURL = srv.URL + "/apps/{{ .Vars.app }}/rollback-ready"
			if tc.method != "" {
				c.PreflightMethod = tc.method
			}
			c.Headers = map[string]string{"X-Team": "{{ .Vars.app }}-oncall"}
			if es := c.Validate(); len(es) > 0 {
				t.Fatal(es)
			}
			w, err := New(c, actuators.Options{Name: "notify"})
			if err != nil {
				t.Fatal(err)
			}
			e := actuators.PreflightEvent(event())
			e.Vars = map[string]string{"app": "we b/x"}
			res, err := w.Preflight(t.Context(), e)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			wantMethod := strings.ToUpper(tc.method)
			if wantMethod == "" {
				wantMethod = http.MethodGet
			}
			if len(got) != 1 || got[0].Method != wantMethod || got[0].URL.EscapedPath() != "/apps/we%20b%2Fx/rollback-ready" || got[0].Header.Get("X-Team") != "we b/x-oncall" {
				t.Fatalf("requests: %d, %+v", len(got), got)
			}
			if res.Status != tc.status || res.Target != wantMethod+" "+srv.URL+"/apps/we%20b%2Fx/rollback-ready" {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestWebhookPreflightConfig(t *testing.T) {
	c := DefaultConfig()
	c.URL = "http://hooks.example/x"
	c.PreflightURL = "{{ .Vars.host }}/ready"
	c.PreflightMethod = "POST"
	got := c.Validate().Error()
	for _, w := range []string{`preflight_method: "POST" is not GET or HEAD`, "preflight_url: "} {
		if !strings.Contains(got, w) {
			t.Errorf("errors lack %q:\n%s", w, got)
		}
	}
	c = DefaultConfig()
	c.URL = "http://hooks.example/x"
	w, err := New(c, actuators.Options{Name: "notify"})
	if err == nil {
		_, err = w.Preflight(t.Context(), event())
	}
	if !errors.Is(err, actuators.ErrNoPreflight) {
		t.Errorf("without preflight_url: %v", err)
	}
}
