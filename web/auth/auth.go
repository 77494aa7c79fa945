// Package auth guards canaryd's HTTP surface with the config's API tokens: it finds the
// caller's token (Bearer, or Basic with the token as password so that a browser can
// open the pages), checks the role the route needs, and puts the token's name in the
// request's context as the "who" of the audit log. It never sees a raw token at rest:
// the config holds SHA-256 hashes only.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/canaryd/canaryd/config"
)

// Anonymous is the caller's name when the API runs without authentication.
const Anonymous = "anonymous"

type ctxKey struct{}

// Who is the name of the token that made the request, or Anonymous.
func Who(ctx context.Context) string {
	if n, ok := ctx.Value(ctxKey{}).(string); ok {
		return n
	}
	return Anonymous
}

// WithWho returns ctx carrying a caller's name, for tests and internal callers.
func WithWho(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, ctxKey{}, name)
}

type token struct {
	name  string
	hash  [32]byte
	roles map[string]bool
}

type state struct {
	auth   *config.Auth
	tokens []token
}

// Guard checks requests against the current tokens; Set swaps them on a config reload
// without dropping a request.
type Guard struct {
	cur atomic.Pointer[state]
}

// New returns a Guard for a config's auth block (nil: no authentication).
func New(a *config.Auth) *Guard {
	g := &Guard{}
	g.Set(a)
	return g
}

// Set installs the tokens of a (re)loaded config.
func (g *Guard) Set(a *config.Auth) {
	s := &state{auth: a}
	if a != nil {
		for _, t := range a.Tokens {
			rs := map[string]bool{}
			for _, r := range t.Roles {
				rs[r] = true
			}
			s.tokens = append(s.tokens, token{name: t.Name, hash: t.Hash, roles: rs})
		}
	}
	g.cur.Store(s)
}

// Current is the auth block in force.
func (g *Guard) Current() *config.Auth { return g.cur.Load().auth }

// Enabled reports whether requests need a token.
func (g *Guard) Enabled() bool { return g.cur.Load().auth != nil }

// RoleFor is the role a request needs, or "" for an open operational endpoint.
func RoleFor(a *config.Auth, r *http.Request) string {
	switch p := r.URL.Path; {
	case p == "/healthz" || p == "/readyz" || p == "/metrics":
		if r.Method == http.MethodGet && a.Open(strings.TrimPrefix(p, "/")) {
			return ""
		}
		return config.RoleRead
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return config.RoleRead
	case r.Method == http.MethodPost && strings.TrimSuffix(p, "/") == "/api/v1/canaries":
		return config.RoleRegister
	}
	return config.RoleOperate
}

// Wrap authenticates every request before next sees it: 401 without a valid token, 403
// when the token lacks the route's role.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := g.cur.Load()
		if s.auth == nil {
			next.ServeHTTP(w, r)
			return
		}
		role := RoleFor(s.auth, r)
		if role == "" {
			next.ServeHTTP(w, r)
			return
		}
		raw, ok := presented(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="canaryd", Basic realm="canaryd"`)
			deny(w, http.StatusUnauthorized, "an API token is required: Authorization: Bearer TOKEN")
			return
		}
		t := s.match(raw)
		if t == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="canaryd", error="invalid_token"`)
			deny(w, http.StatusUnauthorized, "the API token is not valid")
			return
		}
		if !t.roles[role] {
			deny(w, http.StatusForbidden, "token "+t.name+" lacks the "+role+" role that "+r.Method+" "+r.URL.Path+" needs")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithWho(r.Context(), t.name)))
	})
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
