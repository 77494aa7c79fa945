package slack

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/actuators"
)

// fakeAuthTest answers POST /api/auth.test as Slack documents it: the token in
// Authorization as a bearer, HTTP 200 whatever the outcome, {"ok":true,…} with the
// workspace and the user for a valid token, {"ok":false,"error":"invalid_auth"} for
// another, "not_authed" without one.
type fakeAuthTest struct {
	token string
	calls int
}

func (f *fakeAuthTest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls++
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if r.Method != http.MethodPost || r.URL.Path != "/api/auth.test" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		io.WriteString(w, `{"ok":false,"error":"not_authed"}`)
	case auth != "Bearer "+f.token:
		io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
	default:
		io.WriteString(w, `{"ok":true,"url":"https://acme.slack.com/","team":"Acme","user":"canaryd","team_id":"T0001","user_id":"U0001","bot_id":"B0001","is_enterprise_install":false}`)
	}
}

func TestSlackPreflight(t *testing.T) {
	cases := []struct {
		name, token, want string
	}{
		{name: "token works", token: "xoxb-good-0123456789"},
		{name: "token revoked", token: "xoxb-old-0123456789", want: "auth.test: the token is refused: invalid_auth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeAuthTest{token: "xoxb-good-0123456789"}
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			t.Setenv("SLACK_WEBHOOK", srv.URL+"/services/T/B/x")
			t.Setenv("SLACK_APP_TOKEN", tc.token)
			c := DefaultConfig()
			c.URLEnv, c.PreflightTokenEnv, c.PreflightURL = "SLACK_WEBHOOK", "SLACK_APP_TOKEN", srv.URL+"/api/auth.test"
			if es := c.Validate(); len(es) > 0 {
				t.Fatal(es)
			}
			s, err := New(c, actuators.Options{Name: "slack"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Preflight(t.Context(), actuators.PreflightEvent(event(0)))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if fake.calls != 1 || res.Status != http.StatusOK || res.Target != "POST "+srv.URL+"/api/auth.test" {
				t.Errorf("calls %d, result %+v", fake.calls, res)
			}
			if strings.Contains(res.Output+res.Target, tc.token) {
				t.Error("the token is in the result")
			}
		})
	}
	t.Setenv("SLACK_WEBHOOK", "https://hooks.slack.com/services/T/B/x")
	c := DefaultConfig()
	c.URLEnv = "SLACK_WEBHOOK"
	s, err := New(c, actuators.Options{Name: "slack"})
	if err == nil {
		_, err = s.Preflight(t.Context(), event(0))
	}
	if !errors.Is(err, actuators.ErrNoPreflight) {
		t.Errorf("without preflight_token_env: %v", err)
	}
	if c.PreflightURL != "https://slack.com/api/auth.test" {
		t.Errorf("default preflight_url %q", c.PreflightURL)
	}
}
