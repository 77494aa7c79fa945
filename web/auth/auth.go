// Package auth is the authentication middleware of canaryd's HTTP surface. Every route
// is registered through a Router with the Access it needs (Read, Register, Operate, or
// Open for an operational endpoint), so a route cannot exist without one. The middleware
// finds the caller's token (Bearer, or Basic with the token as password so that a browser
// can open the pages; for a client that cannot send headers, such as Flagger's webhooks,
// in the body or as the config's route token: Webhook), checks the route's role against
// the config's Tokens, and sets the caller's identity.Actor in the request's context once,
// for the audit log. It never sees a raw token at rest: the config holds SHA-256 hashes
// only.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
)

// Anonymous is the name of a caller that is not authenticated and claims no name.
const Anonymous = "anonymous"

// HeaderUser names the caller in the audit log when the API runs without authentication;
// it is taken as claimed, and the client's address is recorded with it. With
// server.auth, the token's name is the identity and this header is ignored.
const HeaderUser = "X-Canaryd-User"

type token struct {
	name  string
	hash  [32]byte
	roles map[string]bool
}

type state struct {
	auth   *config.Auth
	tokens []token
}

// Tokens are the API tokens in force; Set swaps them on a config reload without
// dropping a request.
type Tokens struct {
	cur atomic.Pointer[state]
}

// New returns the Tokens of a config's auth block (nil: no authentication).
func New(a *config.Auth) *Tokens {
	t := &Tokens{}
	t.Set(a)
	return t
}

// Set installs the tokens of a (re)loaded config.
func (t *Tokens) Set(a *config.Auth) {
	s := &state{auth: a}
	if a != nil {
		for _, tk := range a.Tokens {
			rs := map[string]bool{}
			for _, r := range tk.Roles {
				rs[r] = true
			}
			s.tokens = append(s.tokens, token{name: tk.Name, hash: tk.Hash, roles: rs})
		}
	}
	t.cur.Store(s)
}

// Current is the auth block in force.
func (t *Tokens) Current() *config.Auth { return t.state().auth }

// Enabled reports whether requests need a token.
func (t *Tokens) Enabled() bool { return t.state().auth != nil }

// state is the tokens in force; a nil *Tokens is no authentication.
func (t *Tokens) state() *state {
	if t == nil {
		return &state{}
	}
	return t.cur.Load()
}

// Access is what a route asks of its caller: a role, or for an operational endpoint
// that server.auth.open_endpoints may open, nothing when it is open.
type Access struct {
	role string
	// open is the endpoint's name in server.auth.open_endpoints, or "".
	open string
	// body is set for an integration's route whose client cannot send headers.
	body *bodyToken
}

// bodyToken is where an integration's client puts its token instead of a header.
type bodyToken struct {
	// integration is the key of server.auth.route_tokens for these routes ("flagger").
	integration string
	// where names the token's place in the body for the 401's message ("metadata.token").
	where string
	// find returns the token in a request body, "" for none; it must not keep the body.
	find func(body []byte) string
}

// The accesses of canaryd's routes: read for what only reads, register for creating a
// canary, operate for what changes one or the daemon (abort, promote, approve, reject,
// reload).
var (
	Read     = Access{role: config.RoleRead}
	Register = Access{role: config.RoleRegister}
	Operate  = Access{role: config.RoleOperate}
)

// Open is the access of an operational endpoint (healthz, readyz, metrics): served to
// anyone on GET while server.auth.open_endpoints lists it (the default), else it needs
// read.
func Open(endpoint string) Access {
	switch endpoint {
	case "healthz", "readyz", "metrics":
	default:
		panic("auth: " + endpoint + " is not an endpoint server.auth.open_endpoints can open") // a wiring mistake
	}
	return Access{role: config.RoleRead, open: endpoint}
}

// Webhook is the access of an integration's route whose client cannot send headers
// (Flagger's webhooks): a's role, held by the token that find reads from the JSON body
// (where names its place: "metadata.token") or, when the body has none, by the token
// server.auth.route_tokens names for the integration. A header token still works.
func Webhook(a Access, integration, where string, find func(body []byte) string) Access {
	if a.open != "" || a.role == "" || find == nil {
		panic("auth: a webhook's access is a role and a way to find its token") // a wiring mistake
	}
	a.body = &bodyToken{integration: integration, where: where, find: find}
	return a
}

// String is the access as the README's route table writes it.
func (a Access) String() string {
	switch {
	case a.open != "":
		return "open (" + a.open + " in open_endpoints), else " + a.role
	case a.body != nil:
		return a.role + " (token in " + a.body.where + " or route_tokens." + a.body.integration + ")"
	}
	return a.role
}

// maxTokenBody caps what the middleware reads of a body to find a token in it; the
// handler reads the rest and applies server.max_body_bytes.
const maxTokenBody = 1 << 20

// fromBody finds the token of an integration's request in its body, or the integration's
// route token, and leaves the body for the handler as it was.
func (s *state) fromBody(r *http.Request, b *bodyToken) (*token, bool, error) {
	head, err := io.ReadAll(io.LimitReader(r.Body, maxTokenBody))
	if err != nil {
		return nil, false, err
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if raw := b.find(head); raw != "" {
		return s.match(raw), true, nil
	}
	if rt := s.auth.RouteToken(b.integration); rt != nil {
		for i := range s.tokens {
			if s.tokens[i].name == rt.Name {
				return &s.tokens[i], false, nil
			}
		}
	}
	return nil, false, nil
}

// Route is one registered route and what it needs.
type Route struct {
	Pattern string
	Access  Access
}

// Router registers routes on a mux, each behind the middleware with its Access.
type Router struct {
	mux    *http.ServeMux
	tokens *Tokens
	// surface names an unauthenticated caller in the audit log: "api:NAME", "ui:NAME".
	surface string
	routes  []Route
}

// NewRouter returns a Router that registers on mux, authenticating with tokens (nil: no
// authentication). surface prefixes the name of a caller without a token ("api", "ui").
func NewRouter(mux *http.ServeMux, tokens *Tokens, surface string) *Router {
	return &Router{mux: mux, tokens: tokens, surface: surface}
}

// Handle registers h for pattern, which must name its method ("POST /api/v1/canaries"):
// the access of a GET route is not the access of a POST to the same path.
func (rt *Router) Handle(pattern string, a Access, h http.Handler) {
	method, _, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || strings.HasPrefix(method, "/") || a.role == "" {
		panic("auth: route " + pattern + " needs a method and an access") // a wiring mistake
	}
	rt.routes = append(rt.routes, Route{Pattern: pattern, Access: a})
	rt.mux.Handle(pattern, rt.Require(a, h))
}

// Routes are the routes registered so far, in order.
func (rt *Router) Routes() []Route { return append([]Route(nil), rt.routes...) }

// Require is the middleware alone, for a handler that is not a route of the mux (the
// answer to a request no route matches): 401 without a valid token, 403 when the token
// lacks the role; otherwise next runs with the caller's identity in its context.
func (rt *Router) Require(a Access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := rt.tokens.state()
		if s.auth == nil || (a.open != "" && r.Method == http.MethodGet && s.auth.Open(a.open)) {
			next.ServeHTTP(w, r.WithContext(identity.With(r.Context(), rt.unauthenticated(r))))
			return
		}
		var t *token
		raw, ok := presented(r)
		switch {
		case ok:
			t = s.match(raw)
		case a.body != nil:
			var err error
			t, ok, err = s.fromBody(r, a.body)
			if err != nil {
				deny(w, http.StatusBadRequest, "reading the body: "+err.Error())
				return
			}
			if !ok && t == nil {
				deny(w, http.StatusUnauthorized, "an API token is required: "+a.body.where+" in the webhook's metadata, or server.auth.route_tokens."+a.body.integration+" in canaryd's config")
				return
			}
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="canaryd", Basic realm="canaryd"`)
			deny(w, http.StatusUnauthorized, "an API token is required: Authorization: Bearer TOKEN")
			return
		}
		if t == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="canaryd", error="invalid_token"`)
			deny(w, http.StatusUnauthorized, "the API token is not valid")
			return
		}
		if !t.roles[a.role] {
			deny(w, http.StatusForbidden, "token "+t.name+" lacks the "+a.role+" role that "+r.Method+" "+r.URL.Path+" needs")
			return
		}
		next.ServeHTTP(w, r.WithContext(identity.With(r.Context(), identity.Actor{Name: "token:" + t.name, Remote: r.RemoteAddr})))
	})
}

// unauthenticated is a caller without a token: named as it claims (HeaderUser) when
// the name is printable and short, else anonymous.
func (rt *Router) unauthenticated(r *http.Request) identity.Actor {
	name := strings.TrimSpace(r.Header.Get(HeaderUser))
	if i, _ := analysis.BadText(name); name == "" || len(name) > 200 || i >= 0 {
		name = Anonymous
	}
	return identity.Actor{Name: rt.surface + ":" + name, Remote: r.RemoteAddr}
}

// presented is the token of a Bearer header, or the password of a Basic one.
func presented(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok && tok != "" {
		return strings.TrimSpace(tok), true
	}
	if _, pass, ok := r.BasicAuth(); ok && pass != "" {
		return pass, true
	}
	return "", false
}

// match compares the presented token's hash with every token's in constant time, so
// that timing says nothing about which hash came close.
func (s *state) match(raw string) *token {
	sum := sha256.Sum256([]byte(raw))
	var found *token
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].hash[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	return found
}

func deny(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
