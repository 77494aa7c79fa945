package flag

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/internal/field"
)

// fakeLaunchDarklyGet answers GET /api/v2/flags/{project}/{flag} as LaunchDarkly's API
// documents: the flag with each environment's "on", 404 {"code":"not_found"} for a flag
// the project does not have, 401 for a wrong key. flags maps a flag key to whether it is
// on in production.
type fakeLaunchDarklyGet struct {
	key   string
	flags map[string]bool
	seen  []*http.Request
}

func (f *fakeLaunchDarklyGet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.seen = append(f.seen, r)
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != f.key {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":"unauthorized","message":"Invalid access token"}`)
		return
	}
	parts := strings.Split(r.URL.Path, "/")
	on, ok := f.flags[parts[len(parts)-1]]
	if r.Method != http.MethodGet || len(parts) != 6 || !strings.HasPrefix(r.URL.Path, "/api/v2/flags/default/") || !ok {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"code":"not_found","message":"Unknown resource"}`)
		return
	}
	state := "false"
	if on {
		state = "true"
	}
	io.WriteString(w, `{"key":"`+parts[len(parts)-1]+`","kind":"boolean","environments":{"production":{"on":`+state+`,"archived":false},"staging":{"on":true}}}`)
}

func TestFlagPreflight(t *testing.T) {
	t.Setenv("LD_API_KEY", "api-0123456789")
	cases := []struct {
		name    string
		key     string
		vars    map[string]string
		noOn    bool
		want    string // "" passes
		wantOut string
	}{
		{name: "exists and is on", key: "api-0123456789", vars: map[string]string{"flag": "new-checkout", "ld_environment": "production"}},
		{name: "flag not found", key: "api-0123456789", vars: map[string]string{"flag": "no-such-flag", "ld_environment": "production"},
			want: "404 Not Found: the flag does not exist", wantOut: `"code":"not_found"`},
		{name: "exists but is off", key: "api-0123456789", vars: map[string]string{"flag": "old-checkout", "ld_environment": "production"},
			want: "the flag is not on: /environments/production/on is false"},
		{name: "off, without preflight_on", key: "api-0123456789", noOn: true, vars: map[string]string{"flag": "old-checkout", "ld_environment": "production"}},
		{name: "an environment name cannot reach another key", key: "api-0123456789", vars: map[string]string{"flag": "new-checkout", "ld_environment": "staging/../production"},
			want: "the answer has no /environments/staging~1..~1production/on"},
		{name: "the token no longer works", key: "rotated", vars: map[string]string{"flag": "new-checkout", "ld_environment": "production"},
			want: "401 Unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ld := &fakeLaunchDarklyGet{key: tc.key, flags: map[string]bool{"new-checkout": true, "old-checkout": false}}
			srv := httptest.NewServer(ld)
			t.Cleanup(srv.Close)
			c := ldConfig(srv.URL)
			c.PreflightURL = srv.URL + "/api/v2/flags/{{ .Vars.ld_project }}/{{ .Vars.flag }}"
			if !tc.noOn {
				c.PreflightOn = "/environments/{{ .Vars.ld_environment }}/on"
			}
			f, err := New(c, actuators.Options{Name: "ld"})
			if err != nil {
				t.Fatal(err)
			}
			e := actuators.PreflightEvent(event())
			for k, v := range tc.vars {
				e.Vars[k] = v
			}
			res, err := f.Preflight(t.Context(), e)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want a pass, got %v (%s)", err, res.Output)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !strings.Contains(res.Output, tc.wantOut) {
				t.Errorf("output %q lacks %q", res.Output, tc.wantOut)
			}
			if len(ld.seen) != 1 || ld.seen[0].Method != http.MethodGet || ld.seen[0].Header.Get(actuators.HeaderIdempotencyKey) != "c1/preflight/ld" {
				t.Fatalf("requests %+v, want one GET", ld.seen)
			}
			if want := "GET " + srv.URL + "/api/v2/flags/default/" + tc.vars["flag"]; res.Target != want {
				t.Errorf("target %q, want %q", res.Target, want)
			}
			if strings.Contains(res.Output+res.Target, "api-0123456789") || err != nil && strings.Contains(err.Error(), "api-0123456789") {
				t.Error("the API key is in the result")
			}
		})
	}
}

func TestFlagPreflightConfig(t *testing.T) {
	t.Setenv("LD_API_KEY", "api-0123456789")
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{name: "on without url", edit: func(c *Config) { c.PreflightURL = ""; c.PreflightOn = "/on" }, want: "preflight_on: needs preflight_url"},
		{name: "not a pointer", edit: func(c *Config) { c.PreflightOn = "on" }, want: `preflight_on: "on" is not a JSON pointer`},
		{name: "unknown secret", edit: func(c *Config) { c.PreflightURL = "http://x/{{ .Secrets.nope }}" }, want: "preflight_url: .Secrets.nope is not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ldConfig("http://flags.example")
			c.PreflightURL = "http://flags.example/{{ .Vars.flag }}"
			tc.edit(&c)
			var es field.Errors = c.Validate()
			if !strings.Contains(es.Error(), tc.want) {
				t.Errorf("errors %q, want %q", es.Error(), tc.want)
			}
		})
	}
	f, err := New(ldConfig("http://flags.example"), actuators.Options{Name: "ld"})
	if err == nil {
		_, err = f.Preflight(t.Context(), event())
	}
	if !errors.Is(err, actuators.ErrNoPreflight) {
		t.Errorf("without preflight_url: %v, want ErrNoPreflight", err)
	}
}
