// Package web is canaryd's HTTP surface assembled: the JSON API (web/api/v1), Flagger's
// webhooks (web/flagger) and the pages (web/ui) registered on one mux through web/auth's
// Router, each route with the role it needs, behind the same-origin check (web/sameorigin). A request no route
// matches is a JSON 404 or 405 on the API's paths and the pages' 404 page elsewhere,
// after the same authentication as a read. It holds no state of its own; cmd/canaryd
// wires it, and a new route goes in the API's or the pages' Register.
package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
	apiv1 "github.com/canaryd/canaryd/web/api/v1"
	"github.com/canaryd/canaryd/web/auth"
	"github.com/canaryd/canaryd/web/flagger"
	"github.com/canaryd/canaryd/web/kayenta"
	"github.com/canaryd/canaryd/web/kayentajudge"
	"github.com/canaryd/canaryd/web/sameorigin"
	"github.com/canaryd/canaryd/web/ui"
)

// Canaries is the scheduler as the API and the pages use it; *analysis.Scheduler
// implements it.
type Canaries interface {
	apiv1.Reader
	apiv1.Registrar
	apiv1.Operator
	ui.Source
}

// Options are what the surface is built from. Canaries is required; nil Tokens is no
// authentication, nil Origins trusts no other site.
type Options struct {
	Canaries Canaries
	// Actuations serves approve, reject, a canary's actuations and the audit log.
	Actuations apiv1.Actuations
	// Events is the audit log Flagger's event webhook writes; nil answers it 404.
	Events  flagger.Events
	Tokens  *auth.Tokens
	Origins *sameorigin.Policy
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Reload reloads the config (POST /-/reload); nil disables it.
	Reload func(context.Context) error
	// Ready is /readyz's answer; nil is always ready.
	Ready   func() error
	MaxBody int64
	Logger  *zap.Logger
	// Clock is the scheduler's, which the audit log's relative times count from.
	Clock analysis.Clock
	// Kayenta serves the Kayenta routes (GET /canaryConfig, POST and GET /canary/…, as
	// Argo Rollouts' kayenta provider calls them); nil leaves them out.
	Kayenta kayenta.Canaries
}

// Server is the HTTP surface.
type Server struct {
	mux     *http.ServeMux
	h       http.Handler
	routes  []auth.Route
	apiMiss http.Handler
	uiMiss  http.Handler
	// apiRoots are the first path segments of the API's routes ("api", "-", "metrics",
	// …): a miss under one of them is the API's, and JSON.
	apiRoots map[string]bool
}

// New assembles the surface.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Origins == nil {
		o.Origins = sameorigin.New(nil)
	}
	s := &Server{mux: http.NewServeMux(), apiRoots: map[string]bool{}}
	api := auth.NewRouter(s.mux, o.Tokens, apiv1.Surface)
	apiv1.New(apiv1.Options{
		Reader: o.Canaries, Registrar: o.Canaries, Operator: o.Canaries, Actuations: o.Actuations,
		Gatherer: o.Gatherer, Reload: o.Reload, Ready: o.Ready, MaxBody: o.MaxBody, Logger: o.Logger,
		Clock: o.Clock,
	}).Register(api)
	flagger.New(flagger.Options{Canaries: o.Canaries, Events: o.Events, Logger: o.Logger.Named("flagger"), MaxBody: o.MaxBody}).Register(api)
	pages := auth.NewRouter(s.mux, o.Tokens, ui.Surface)
	uo := ui.Options{Logger: o.Logger.Named("ui"), Operator: o.Canaries}
	if o.Actuations != nil {
		uo.Actuations = o.Actuations
	}
	uiH := ui.New(o.Canaries, uo)
	uiH.Register(pages)
	// Kayenta's routes sit at the root, as Kayenta serves them; a caller without a token
	// is "kayenta:NAME" in the audit log.
	kay := auth.NewRouter(s.mux, o.Tokens, kayenta.Surface)
	if o.Kayenta != nil {
		kayenta.New(kayenta.Options{Canaries: o.Kayenta, Logger: o.Logger.Named("kayenta"), MaxBody: o.MaxBody}).Register(kay)
	}
	// Kayenta's remote judge needs nothing of the daemon but its judge.
	kayentajudge.New(kayentajudge.Options{Logger: o.Logger.Named("kayenta-judge")}).Register(kay)
	for _, rt := range append(api.Routes(), kay.Routes()...) {
		s.apiRoots[root(rt.Pattern[strings.Index(rt.Pattern, " ")+1:])] = true
	}
	s.routes = append(append(api.Routes(), kay.Routes()...), pages.Routes()...)
	// A miss says nothing before the caller is authenticated as a reader would be.
	s.apiMiss = api.Require(auth.Read, http.HandlerFunc(s.jsonMiss))
	s.uiMiss = pages.Require(auth.Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, _ := s.miss(r); code == http.StatusMethodNotAllowed {
			s.jsonMiss(w, r)
			return
		}
		uiH.NotFound(w, r)
	}))
	// A cross-site page cannot make a browser change anything, with or without the
	// credentials it holds; the pages' forms carry a token as well (package ui).
	s.h = o.Origins.Wrap(http.HandlerFunc(s.serve))
	return s
}

// Routes are every route with its access: the API's, Kayenta's, then the pages'.
func (s *Server) Routes() []auth.Route { return append([]auth.Route(nil), s.routes...) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// The mux names the pattern it would serve; none is a 404 or a 405, which the mux
	// would answer in plain text.
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	if s.apiRoots[root(r.URL.Path)] {
		s.apiMiss.ServeHTTP(w, r)
		return
	}
	s.uiMiss.ServeHTTP(w, r)
}

// miss is what the mux would answer to a request no route matches: 404, or 405 with
// the methods the path has.
func (s *Server) miss(r *http.Request) (code int, allow string) {
	h, _ := s.mux.Handler(r)
	c := &capture{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(c, r)
	return c.code, c.header.Get("Allow")
}

func (s *Server) jsonMiss(w http.ResponseWriter, r *http.Request) {
	code, allow := s.miss(r)
	msg := "no route " + r.Method + " " + r.URL.Path + " (the routes are in canaryd's README, HTTP API)"
	if code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allow)
		msg = r.Method + " is not allowed on " + r.URL.Path + "; it takes " + allow
	} else {
		code = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]string{"error": msg}) // the client went away; nothing to do
}

// root is a path's first segment: "api" of /api/v1/canaries.
func root(path string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return first
}

// capture keeps the status and headers a handler writes, and drops the body.
type capture struct {
	header http.Header
	code   int
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) Write(b []byte) (int, error) { return len(b), nil }
func (c *capture) WriteHeader(code int)        { c.code = code }
