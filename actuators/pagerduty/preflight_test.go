package pagerduty

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/actuators"
)

// fakeREST answers GET /abilities as PagerDuty's REST API documents it: the key in
// "Authorization: Token token=…", the versioned Accept type, 200 {"abilities": […]};
// 401 {"error":{"message":"Unauthorized","code":2006}} for a key it does not know.
type fakeREST struct {
	key   string
	calls []*http.Request
}

func (f *fakeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls = append(f.calls, r)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet || r.URL.Path != "/abilities" {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"message":"Not Found","code":2100}}`)
		return
	}
	if r.Header.Get("Authorization") != "Token token="+f.key {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"message":"Unauthorized","code":2006}}`)
		return
	}
	io.WriteString(w, `{"abilities":["sso","advanced_reports","teams","read_only_users","team_responders","service_support_hours","urgencies","manage_schedules","manage_api_keys","coordinated_responding","event_rules","beta_custom_actions","coordinated_responding_preview","preview_incident_alert_split","permissions_service"]}`)
}

// preflighter is what the guard asks of an actuator with a preflight.
type preflighter interface {
	Preflight(context.Context, actuators.Event) (actuators.Result, error)
}

func TestPagerDutyPreflight(t *testing.T) {
	cases := []struct {
		name, key, mode, want string
	}{
		{name: "key works", key: "y_NbAkKc66ryYTWUXYEu"},
		{name: "key rotated", key: "old-key-0123456789", want: "401 Unauthorized: Unauthorized (code 2006)"},
		{name: "change events: key works", key: "y_NbAkKc66ryYTWUXYEu", mode: ModeChange},
		{name: "change events: key rotated", key: "old-key-0123456789", mode: ModeChange, want: "401 Unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeREST{key: "y_NbAkKc66ryYTWUXYEu"}
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			t.Setenv("PD_ROUTING_KEY", "R0123456789abcdef0123456789abcdef")
			t.Setenv("PD_API_KEY", tc.key)
			c := DefaultConfig()
			c.RoutingKeyEnv, c.PreflightTokenEnv, c.PreflightURL = "PD_ROUTING_KEY", "PD_API_KEY", srv.URL+"/abilities"
			if tc.mode != "" {
				c.Mode = tc.mode
			}
			if es := c.Validate(); len(es) > 0 {
				t.Fatal(es)
			}
			p := build(t, c)
			res, err := p.Preflight(t.Context(), actuators.PreflightEvent(event()))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if len(fake.calls) != 1 || fake.calls[0].Header.Get("Accept") != "application/vnd.pagerduty+json;version=2" {
				t.Fatalf("calls %+v", fake.calls)
			}
			if res.Target != "GET "+srv.URL+"/abilities" || strings.Contains(res.Output+res.Target, tc.key) {
				t.Errorf("result %+v", res)
			}
		})
	}
	t.Run("not the REST API", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>proxy login</html>") }))
		t.Cleanup(srv.Close)
		t.Setenv("PD_ROUTING_KEY", "R0123456789abcdef0123456789abcdef")
		t.Setenv("PD_API_KEY", "k")
		c := DefaultConfig()
		c.RoutingKeyEnv, c.PreflightTokenEnv, c.PreflightURL = "PD_ROUTING_KEY", "PD_API_KEY", srv.URL+"/abilities"
		if _, err := build(t, c).Preflight(t.Context(), event()); err == nil || !strings.Contains(err.Error(), "not the REST API's abilities list") {
			t.Errorf("got %v", err)
		}
	})
	t.Setenv("PD_ROUTING_KEY", "R0123456789abcdef0123456789abcdef")
	c := DefaultConfig()
	c.RoutingKeyEnv = "PD_ROUTING_KEY"
	_, err := build(t, c).Preflight(t.Context(), event())
	if !errors.Is(err, actuators.ErrNoPreflight) || c.PreflightURL != "https://api.pagerduty.com/abilities" {
		t.Errorf("without preflight_token_env: %v (url %s)", err, c.PreflightURL)
	}
}

func build(t *testing.T, c Config) preflighter {
	t.Helper()
	a, err := New(c, actuators.Options{Name: "page"})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := a.(preflighter)
	if !ok {
		t.Fatalf("%T has no preflight", a)
	}
	return p
}
