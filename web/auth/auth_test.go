package auth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
	"github.com/canaryd/canaryd/web/auth"
)

const (
	pipelineToken = "pipeline-0123456789abcdef0123"
	sreToken      = "sre-token-from-env-0123456789"
	readerToken   = "reader-token-from-file-012345"
)

func tokensFor(t *testing.T, open string) *auth.Tokens {
	t.Helper()
	t.Setenv("CANARYD_SRE_TOKEN", sreToken)
	file := filepath.Join(t.TempDir(), "reader.token")
	if err := os.WriteFile(file, []byte(readerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`
server:
  auth:
    tokens:
      - {name: pipeline, sha256: "`+config.HashToken(pipelineToken)+`", roles: [read, register]}
      - {name: sre, env: CANARYD_SRE_TOKEN, roles: [read, register, operate]}
      - {name: dashboard, file: "`+file+`", roles: [read]}
`+open+`
analyses: {}
`), config.Kinds{})
	if err != nil {
		t.Fatal(err)
	}
	return auth.New(cfg.Server.Auth)
}

// routes are a few of canaryd's routes, each with the access web.New gives it.
func routes(mux *http.ServeMux, tokens *auth.Tokens, next http.Handler) *auth.Router {
	r := auth.NewRouter(mux, tokens, "api")
	r.Handle("GET /api/v1/canaries", auth.Read, next)
	r.Handle("GET /api/v1/canaries/{id}", auth.Read, next)
	r.Handle("POST /api/v1/canaries", auth.Register, next)
	r.Handle("POST /api/v1/canaries/{id}/abort", auth.Operate, next)
	r.Handle("POST /-/reload", auth.Operate, next)
	r.Handle("GET /canaries/{id}", auth.Read, next)
	r.Handle("GET /metrics", auth.Open("metrics"), next)
	r.Handle("GET /healthz", auth.Open("healthz"), next)
	return r
}

func TestRouter(t *testing.T) {
	whoSaw := ""
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		whoSaw = identity.From(r.Context(), "").Name
		w.WriteHeader(http.StatusTeapot)
	})
	cases := []struct {
		name, method, path, token string
		basic                     bool
		open                      string
		code                      int
		who                       string
		body                      string
	}{
		{"no token", "GET", "/api/v1/canaries", "", false, "", 401, "", "an API token is required"},
		{"wrong token", "GET", "/api/v1/canaries", "nope-nope-nope-nope-nope-nope", false, "", 401, "", "not valid"},
		{"reader reads", "GET", "/api/v1/canaries/abc", readerToken, false, "", 418, "token:dashboard", ""},
		{"reader cannot register", "POST", "/api/v1/canaries", readerToken, false, "", 403, "", "token dashboard lacks the register role that POST /api/v1/canaries needs"},
		{"pipeline registers", "POST", "/api/v1/canaries", pipelineToken, false, "", 418, "token:pipeline", ""},
		{"pipeline cannot abort", "POST", "/api/v1/canaries/abc/abort", pipelineToken, false, "", 403, "", "lacks the operate role"},
		{"pipeline cannot reload", "POST", "/-/reload", pipelineToken, false, "", 403, "", "operate"},
		{"sre aborts", "POST", "/api/v1/canaries/abc/abort", sreToken, false, "", 418, "token:sre", ""},
		{"browser basic auth", "GET", "/canaries/abc", readerToken, true, "", 418, "token:dashboard", ""},
		{"HEAD is a read", "HEAD", "/api/v1/canaries/abc", readerToken, false, "", 418, "token:dashboard", ""},
		{"metrics open by default", "GET", "/metrics", "", false, "", 418, "api:anonymous", ""},
		{"healthz open by default", "GET", "/healthz", "", false, "", 418, "api:anonymous", ""},
		{"an open endpoint is open to GET only", "HEAD", "/healthz", "", false, "", 401, "", "token"},
		{"metrics closed", "GET", "/metrics", "", false, "    open_endpoints: [healthz]", 401, "", "token"},
		{"healthz still open", "GET", "/healthz", "", false, "    open_endpoints: [healthz]", 418, "api:anonymous", ""},
		{"closed metrics with a reader", "GET", "/metrics", readerToken, false, "    open_endpoints: []", 418, "token:dashboard", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			routes(mux, tokensFor(t, tc.open), next)
			whoSaw = ""
			req := httptest.NewRequest(tc.method, tc.path, nil)
			switch {
			case tc.token != "" && tc.basic:
				req.SetBasicAuth("anyone", tc.token)
			case tc.token != "":
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.code || whoSaw != tc.who || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("%d %q (who %q), want %d %q (who %q)", rec.Code, rec.Body.String(), whoSaw, tc.code, tc.body, tc.who)
			}
			if rec.Code == 401 && !strings.Contains(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a WWW-Authenticate challenge")
			}
		})
	}
}

// Without an auth block everything is open and the caller is named as claimed (or
// anonymous); Set swaps the tokens in place (a reload).
func TestRouterDisabledAndReload(t *testing.T) {
	tokens := auth.New(nil)
	var who identity.Actor
	mux := http.NewServeMux()
	routes(mux, tokens, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { who = identity.From(r.Context(), "") }))
	cases := []struct{ name, claim, want string }{
		{"no claim", "", "api:anonymous"},
		{"a claim", " alice ", "api:alice"},
		{"a control character", "al\nice", "api:anonymous"},
		{"too long", strings.Repeat("a", 201), "api:anonymous"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/api/v1/canaries/x/abort", nil)
			req.Header.Set(auth.HeaderUser, tc.claim)
			mux.ServeHTTP(rec, req)
			if rec.Code != 200 || who != (identity.Actor{Name: tc.want, Remote: req.RemoteAddr}) || tokens.Enabled() {
				t.Fatalf("disabled: %d who %+v, want %s", rec.Code, who, tc.want)
			}
		})
	}
	tokens.Set(tokensFor(t, "").Current())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/canaries/x/abort", nil)
	req.Header.Set(auth.HeaderUser, "alice") // ignored with tokens
	mux.ServeHTTP(rec, req)
	if rec.Code != 401 || !tokens.Enabled() {
		t.Fatalf("after Set: %d", rec.Code)
	}
}

// A route cannot be registered without its method and an access.
func TestRouterRefusesRoutesWithoutAccess(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
		a             auth.Access
	}{
		{"no method", "/api/v1/canaries", auth.Read},
		{"no access", "GET /api/v1/canaries", auth.Access{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("registered %q with %v", tc.pattern, tc.a)
				}
			}()
			auth.NewRouter(http.NewServeMux(), nil, "api").Handle(tc.pattern, tc.a, http.NotFoundHandler())
		})
	}
}

func TestAuthConfigErrors(t *testing.T) {
	t.Setenv("EMPTY_TOKEN", "")
	t.Setenv("SHORT_TOKEN", "short")
	cases := []struct{ yaml, want string }{
		{`{tokens: []}`, "server.auth.tokens: at least one token"},
		{`{tokens: [{name: a, roles: [read], sha256: "abc"}]}`, "server.auth.tokens[0].sha256: must be 64 lowercase hex digits"},
		{`{tokens: [{name: a, roles: [admin], env: X}]}`, `server.auth.tokens[0].roles[0]: unknown role "admin"`},
		{`{tokens: [{name: a, roles: [read]}]}`, "server.auth.tokens[0]: exactly one of sha256, env and file"},
		{`{tokens: [{name: a, roles: [read], env: EMPTY_TOKEN}]}`, "server.auth.tokens[0].env: environment variable EMPTY_TOKEN is empty or unset"},
		{`{tokens: [{name: a, roles: [read], env: SHORT_TOKEN}]}`, "server.auth.tokens[0]: the token is shorter than 24 characters"},
		{`{tokens: [{name: a, roles: [read], file: /nonexistent/token}]}`, "server.auth.tokens[0].file: open /nonexistent/token"},
		{`{tokens: [{name: a, roles: [read], sha256: "` + config.HashToken(pipelineToken) + `"}, {name: b, roles: [read], sha256: "` + config.HashToken(pipelineToken) + `"}]}`, `server.auth.tokens[1]: same token as "a"`},
		{`{tokens: [{name: a, roles: [read], sha256: "` + config.HashToken(pipelineToken) + `"}], open_endpoints: [debug]}`, `server.auth.open_endpoints[0]: unknown endpoint "debug"`},
	}
	for _, tc := range cases {
		_, err := config.Parse([]byte("server:\n  auth: "+tc.yaml+"\nanalyses: {}\n"), config.Kinds{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// A webhook route (a client that cannot send headers) takes its token from the body, or
// acts as server.auth.route_tokens' token when the body has none; the handler reads the
// body whole either way, and a header token still works.
func TestWebhookAccess(t *testing.T) {
	find := func(body []byte) string {
		_, tok, _ := strings.Cut(string(body), "token=")
		tok, _, _ = strings.Cut(tok, ";")
		return tok
	}
	var who, bodySaw string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who = identity.From(r.Context(), "").Name
		b, _ := io.ReadAll(r.Body)
		bodySaw = string(b)
		w.WriteHeader(http.StatusTeapot)
	})
	long := strings.Repeat("x", 2<<20) // past what the middleware reads
	cases := []struct {
		name, route, body, header, extra string
		code                             int
		who, answer                      string
	}{
		{"no token", "POST /hook/read", "phase=1;", "", "", 401, "", "metadata.token in the webhook's metadata, or server.auth.route_tokens.flagger"},
		{"a token in the body", "POST /hook/read", "token=" + readerToken + ";", "", "", 418, "token:dashboard", ""},
		{"a wrong token in the body", "POST /hook/read", "token=nope-nope-nope-nope-nope;", "", "", 401, "", "not valid"},
		{"the body token's role", "POST /hook/register", "token=" + readerToken + ";", "", "", 403, "", "token dashboard lacks the register role"},
		{"a header token", "POST /hook/register", "phase=1;", pipelineToken, "", 418, "token:pipeline", ""},
		{"the route token", "POST /hook/register", "phase=1;", "", "    route_tokens: {flagger: pipeline}", 418, "token:pipeline", ""},
		{"the route token's role", "POST /hook/register", "phase=1;", "", "    route_tokens: {flagger: dashboard}", 403, "", "token dashboard lacks the register role"},
		{"a body token wins over the route token", "POST /hook/register", "token=" + readerToken + ";", "", "    route_tokens: {flagger: pipeline}", 403, "", "dashboard"},
		{"a long body reaches the handler whole", "POST /hook/read", "token=" + readerToken + ";" + long, "", "", 418, "token:dashboard", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			r := auth.NewRouter(mux, tokensFor(t, tc.extra), "api")
			r.Handle("POST /hook/read", auth.Webhook(auth.Read, "flagger", "metadata.token", find), next)
			r.Handle("POST /hook/register", auth.Webhook(auth.Register, "flagger", "metadata.token", find), next)
			who, bodySaw = "", ""
			req := httptest.NewRequest("POST", strings.TrimPrefix(tc.route, "POST "), strings.NewReader(tc.body))
			if tc.header != "" {
				req.Header.Set("Authorization", "Bearer "+tc.header)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.code || who != tc.who || !strings.Contains(rec.Body.String(), tc.answer) {
				t.Fatalf("%d %q (who %q), want %d %q (who %q)", rec.Code, rec.Body.String(), who, tc.code, tc.answer, tc.who)
			}
			if tc.code == 418 && bodySaw != tc.body {
				t.Errorf("the handler read %d bytes, want the body's %d", len(bodySaw), len(tc.body))
			}
			if strings.Contains(rec.Body.String(), readerToken) || strings.Contains(rec.Body.String(), pipelineToken) {
				t.Errorf("the answer echoes a token: %s", rec.Body.String())
			}
		})
	}
	if got := auth.Webhook(auth.Register, "flagger", "metadata.token", find).String(); got != "register (token in metadata.token or route_tokens.flagger)" {
		t.Errorf("String() = %q", got)
	}
}
