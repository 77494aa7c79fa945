package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
	"github.com/canaryd/canaryd/web"
	"github.com/canaryd/canaryd/web/auth"
)

// fakeCanaries holds one running canary and records who ended it.
type fakeCanaries struct {
	c     *analysis.Canary
	ended []string
}

func newFake() *fakeCanaries {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &fakeCanaries{c: &analysis.Canary{
		ID: "abcdefghijklmnop", Name: "web", Analysis: "golden", Status: analysis.StatusRunning,
		Baseline: map[string]string{"track": "a"}, Canary: map[string]string{"track": "b"},
		Start: now, Lifetime: 30 * time.Minute, Interval: time.Minute, Intervals: 30,
		CreatedAt: now, UpdatedAt: now,
	}}
}

func (f *fakeCanaries) find(id string) (*analysis.Detail, error) {
	if id != f.c.ID {
		return nil, analysis.ErrNotFound
	}
	return &analysis.Detail{Canary: f.c}, nil
}

func (f *fakeCanaries) Summary(_ context.Context, id string) (*analysis.Detail, error) {
	return f.find(id)
}
func (f *fakeCanaries) Get(_ context.Context, id string) (*analysis.Detail, error) { return f.find(id) }
func (f *fakeCanaries) ListPage(context.Context, analysis.ListQuery) (analysis.Page, error) {
	return analysis.Page{Canaries: []*analysis.Canary{f.c}}, nil
}
func (f *fakeCanaries) CountByStatus(context.Context) (map[analysis.Status]int, error) {
	return map[analysis.Status]int{f.c.Status: 1}, nil
}
func (f *fakeCanaries) Register(context.Context, analysis.Registration) (*analysis.Canary, error) {
	return f.c, nil
}
func (f *fakeCanaries) RegisterByKey(context.Context, analysis.Registration) (*analysis.Canary, analysis.Outcome, error) {
	return f.c, analysis.Created, nil
}
func (f *fakeCanaries) Abort(ctx context.Context, id, _ string, _ bool) (*analysis.Canary, error) {
	return f.end(ctx, id, analysis.StatusAborted)
}
func (f *fakeCanaries) Promote(ctx context.Context, id, _ string) (*analysis.Canary, error) {
	return f.end(ctx, id, analysis.StatusPass)
}
func (f *fakeCanaries) Env() *analysis.Env {
	return &analysis.Env{Config: &config.Config{Analyses: map[string]*config.Analysis{"golden": {Name: "golden"}}}}
}
func (f *fakeCanaries) Analysis(context.Context, *analysis.Canary) (*config.Analysis, error) {
	return f.Env().Config.Analyses["golden"], nil
}
func (f *fakeCanaries) end(ctx context.Context, id string, s analysis.Status) (*analysis.Canary, error) {
	if _, err := f.find(id); err != nil {
		return nil, err
	}
	f.ended = append(f.ended, string(s)+" by "+identity.From(ctx, "nobody").Name)
	return f.c, nil
}

const (
	sreToken    = "sre-token-of-the-web-test-0123"
	readerToken = "reader-token-of-the-web-test-0"
)

func tokens(t testing.TB) *auth.Tokens {
	t.Helper()
	cfg, err := config.Parse([]byte(`
server:
  auth:
    tokens:
      - {name: sre, sha256: "`+config.HashToken(sreToken)+`", roles: [read, register, operate]}
      - {name: dashboard, sha256: "`+config.HashToken(readerToken)+`", roles: [read]}
analyses: {}
`), config.Kinds{})
	if err != nil {
		t.Fatal(err)
	}
	return auth.New(cfg.Server.Auth)
}

func do(t *testing.T, h http.Handler, method, path, token string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Every route is registered with its access, and the README's table of routes says the
// same: a route added without a role does not build, one left out of the table fails here.
func TestRoutes(t *testing.T) {
	want := map[string]string{
		"POST /api/v1/canaries":                  "register",
		"GET /api/v1/canaries":                   "read",
		"GET /api/v1/canaries/{id}":              "read",
		"POST /api/v1/canaries/{id}/abort":       "operate",
		"POST /api/v1/canaries/{id}/promote":     "operate",
		"POST /api/v1/canaries/{id}/approve":     "operate",
		"POST /api/v1/canaries/{id}/reject":      "operate",
		"GET /api/v1/canaries/{id}/actuations":   "read",
		"GET /api/v1/audit":                      "read",
		"GET /metrics":                           "open (metrics in open_endpoints), else read",
		"GET /healthz":                           "open (healthz in open_endpoints), else read",
		"GET /readyz":                            "open (readyz in open_endpoints), else read",
		"POST /-/reload":                         "operate",
		"POST /api/v1/flagger/pre-rollout":       "register (token in metadata.token or route_tokens.flagger)",
		"POST /api/v1/flagger/rollout":           "read (token in metadata.token or route_tokens.flagger)",
		"POST /api/v1/flagger/confirm-rollout":   "read (token in metadata.token or route_tokens.flagger)",
		"POST /api/v1/flagger/confirm-promotion": "read (token in metadata.token or route_tokens.flagger)",
		"POST /api/v1/flagger/post-rollout":      "register (token in metadata.token or route_tokens.flagger)",
		"POST /api/v1/flagger/rollback":          "read (token in metadata.token or route_tokens.flagger)",
		"POST /api/v1/flagger/event":             "register (token in metadata.token or route_tokens.flagger)",
		"GET /{$}":                               "read",
		"GET /canaries/{id}":                     "read",
		"POST /canaries/{id}/abort":              "operate",
		"POST /canaries/{id}/promote":            "operate",
		"GET /canaryConfig":                      "read",
		"POST /canary/{configId}":                "register",
		"GET /canary/{executionId}":              "read",
		"POST /judge":                            "read (token in an Authorization header or route_tokens.kayenta)",
	}
	got := map[string]string{}
	f := newFake()
	for _, r := range web.New(web.Options{Canaries: f, Kayenta: f}).Routes() {
		got[r.Pattern] = r.Access.String()
	}
	for p, a := range want {
		if got[p] != a {
			t.Errorf("%s: access %q, want %q", p, got[p], a)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("route %s (%s) is not in this test's table", p, got[p])
		}
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "\n### Routes and roles\n")
	if !ok {
		t.Fatal("README has no section \"Routes and roles\"")
	}
	table, _, _ = strings.Cut(table, "\n#")
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z]+ [^`]+)` \\| (.+?) \\|").FindAllStringSubmatch(table, -1) {
		rows[m[1]] = m[2]
	}
	for p, a := range got {
		role, _, _ := strings.Cut(a, " ")
		if row, ok := rows[strings.ReplaceAll(p, "{$}", "")]; !ok || !strings.HasPrefix(row, role) {
			t.Errorf("README's routes table: %s is %q, want a row starting with %q", p, row, role)
		}
	}
}

// The roles of the routes, through the whole surface; the caller's identity reaches the
// scheduler as the middleware set it, from the API and from the pages alike.
func TestAuthAndIdentity(t *testing.T) {
	cases := []struct {
		name, method, path, token string
		tokens                    bool
		hdr                       map[string]string
		code                      int
		ended                     string
	}{
		{"no token", "GET", "/api/v1/canaries", "", true, nil, 401, ""},
		{"reader reads", "GET", "/api/v1/canaries/abcdefghijklmnop", readerToken, true, nil, 200, ""},
		{"reader cannot abort", "POST", "/api/v1/canaries/abcdefghijklmnop/abort", readerToken, true, nil, 403, ""},
		{"sre aborts", "POST", "/api/v1/canaries/abcdefghijklmnop/abort", sreToken, true, nil, 200, "aborted by token:sre"},
		{"the claimed name is ignored with tokens", "POST", "/api/v1/canaries/abcdefghijklmnop/promote", sreToken, true,
			map[string]string{auth.HeaderUser: "mallory"}, 200, "pass by token:sre"},
		{"healthz open", "GET", "/healthz", "", true, nil, 200, ""},
		{"reload needs operate", "POST", "/-/reload", readerToken, true, nil, 403, ""},
		{"pages need read", "GET", "/", "", true, nil, 401, ""},
		{"a page's form needs operate", "POST", "/canaries/abcdefghijklmnop/abort", readerToken, true, nil, 403, ""},
		{"no auth: the claimed name", "POST", "/api/v1/canaries/abcdefghijklmnop/abort", "", false,
			map[string]string{auth.HeaderUser: "alice"}, 200, "aborted by api:alice"},
		{"no auth: anonymous", "POST", "/api/v1/canaries/abcdefghijklmnop/promote", "", false, nil, 200, "pass by api:anonymous"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			o := web.Options{Canaries: f}
			if tc.tokens {
				o.Tokens = tokens(t)
			}
			rec := do(t, web.New(o), tc.method, tc.path, tc.token, tc.hdr)
			if rec.Code != tc.code {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body.String(), tc.code)
			}
			if got := strings.Join(f.ended, "; "); got != tc.ended {
				t.Errorf("ended %q, want %q", got, tc.ended)
			}
		})
	}
}

// Issue 19 item 7: every error of the API is JSON, a request no route matches too (404,
// or 405 with Allow); the pages keep their HTML 404. A miss needs the same token as a
// read, so it says nothing to a caller without one.
func TestMisses(t *testing.T) {
	cases := []struct {
		name, method, path, token string
		code                      int
		allow                     string
		json                      string // the error, for a JSON answer
		html                      string // a phrase of the page, for an HTML answer
	}{
		{"unknown API route", "GET", "/api/v1/nope", "", 404, "", "no route GET /api/v1/nope (the routes are in canaryd's README, HTTP API)", ""},
		{"unknown API version", "GET", "/api/v2/canaries", "", 404, "", "no route GET /api/v2/canaries (the routes are in canaryd's README, HTTP API)", ""},
		{"unknown sub-resource", "GET", "/api/v1/canaries/abcdefghijklmnop/nope", "", 404, "", "no route GET /api/v1/canaries/abcdefghijklmnop/nope (the routes are in canaryd's README, HTTP API)", ""},
		{"wrong method", "DELETE", "/api/v1/canaries/abcdefghijklmnop", "", 405, "GET, HEAD", "DELETE is not allowed on /api/v1/canaries/abcdefghijklmnop; it takes GET, HEAD", ""},
		{"GET of an action", "GET", "/api/v1/canaries/abcdefghijklmnop/abort", "", 405, "POST", "GET is not allowed on /api/v1/canaries/abcdefghijklmnop/abort; it takes POST", ""},
		{"POST to healthz", "POST", "/healthz", "", 405, "GET, HEAD", "POST is not allowed on /healthz; it takes GET, HEAD", ""},
		{"unknown operational route", "POST", "/-/quit", "", 404, "", "no route POST /-/quit (the routes are in canaryd's README, HTTP API)", ""},
		{"a page that does not exist", "GET", "/nope", "", 404, "", "", "There is no page at /nope."},
		{"a page's wrong method", "DELETE", "/canaries/abcdefghijklmnop", "", 405, "GET, HEAD", "DELETE is not allowed on /canaries/abcdefghijklmnop; it takes GET, HEAD", ""},
		{"the route itself still answers", "GET", "/api/v1/canaries/zzzzzzzzzzzzzzzz", "", 404, "", "canary not found", ""},
	}
	for _, auth := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if auth {
				name += " (with a token)"
			}
			t.Run(name, func(t *testing.T) {
				o := web.Options{Canaries: newFake()}
				token := ""
				if auth {
					o.Tokens, token = tokens(t), readerToken
				}
				h := web.New(o)
				rec := do(t, h, tc.method, tc.path, token, nil)
				if rec.Code != tc.code || rec.Header().Get("Allow") != tc.allow {
					t.Fatalf("%d (Allow %q) %s, want %d (Allow %q)", rec.Code, rec.Header().Get("Allow"), rec.Body.String(), tc.code, tc.allow)
				}
				ct := rec.Header().Get("Content-Type")
				if tc.json != "" {
					var body map[string]string
					if ct != "application/json" || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body["error"] != tc.json {
						t.Errorf("%s %s, want JSON error %q", ct, rec.Body.String(), tc.json)
					}
				} else if !strings.HasPrefix(ct, "text/html") || !strings.Contains(rec.Body.String(), tc.html) {
					t.Errorf("%s %s, want a page saying %q", ct, rec.Body.String(), tc.html)
				}
				if auth {
					if rec := do(t, h, tc.method, tc.path, "", nil); rec.Code != http.StatusUnauthorized {
						t.Errorf("without a token: %d %s, want 401", rec.Code, rec.Body.String())
					}
				}
			})
		}
	}
}

// BenchmarkRoute is the surface's own cost per request (auth with tokens, the same-origin
// check, the route lookup) on the cheapest route, and on a miss.
func BenchmarkRoute(b *testing.B) {
	h := web.New(web.Options{Canaries: newFake(), Tokens: tokens(b)})
	for _, path := range []string{"/healthz", "/api/v1/nope"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+readerToken)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
