package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/web/auth"
)

// Source is where the pages read canaries. *analysis.Scheduler implements it.
type Source interface {
	Get(ctx context.Context, id string) (*analysis.Detail, error)
	// ListPage and CountByStatus serve the list page, a page at a time.
	ListPage(ctx context.Context, q analysis.ListQuery) (analysis.Page, error)
	CountByStatus(ctx context.Context) (map[analysis.Status]int, error)
}

// AnalysisSource is optional: when the Source also has it (as *analysis.Scheduler does),
// the report shows each metric's unit, judge settings and bounds, and the score
// thresholds, from the analysis snapshot the canary is judged by.
type AnalysisSource interface {
	Analysis(ctx context.Context, c *analysis.Canary) (*config.Analysis, error)
}

// QueryRenderer renders an analysis' queries as they are sent to its provider (values
// escaped for its language); *analysis.Scheduler implements it. Without one the page
// shows them with the values as they are.
type QueryRenderer interface {
	RenderQueries(a *config.Analysis, c *analysis.Canary) []analysis.RenderedQuery
}

// Options configure the pages. All are optional.
type Options struct {
	Logger *zap.Logger
	// Now is the wall clock, for ages and refresh delays (default time.Now).
	Now func() time.Time
	// MaxListed is the rows of one list page, newest first (default 100); the page links
	// to the next one.
	MaxListed int
	// Operator, when set, puts abort and promote forms on a running canary's report.
	Operator Operator
	// CSRFKey signs the forms' tokens (default: random, per process).
	CSRFKey []byte
	// Actuations, when set, lists a canary's actuator actions on its report (the
	// rollback, the escalation); *guard.Guard implements it.
	Actuations ActuationSource
}

// ActuationSource gives a canary's actuator actions, as the safety layer recorded them.
type ActuationSource interface {
	Actuations(ctx context.Context, canaryID string) ([]*guard.Actuation, error)
}

//go:embed templates/*.html
var templateFS embed.FS

// pageTemplates are parsed once; a template that does not parse is a build mistake that
// every test catches, so it panics.
var pageTemplates = template.Must(template.New("").ParseFS(templateFS, "templates/*.html"))

// Router registers a route with the access it needs; *auth.Router is one.
type Router interface {
	Handle(pattern string, a auth.Access, h http.Handler)
}

// Handler is the pages. Register puts their routes on the daemon's router (package
// web); ServeHTTP serves them alone, without authentication, as tests do.
type Handler struct {
	src Source
	op  Operator
	o   Options
	log *zap.Logger
	// standalone is the pages served alone (ServeHTTP).
	standalone *http.ServeMux
}

// Surface names the pages' callers without a token in the audit log ("ui:NAME").
const Surface = "ui"

// New returns the pages: GET / (the list) and GET /canaries/{id} (a report), and with an
// Operator the report's forms. Mount them at the root, next to the API: their links are
// relative.
func New(src Source, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxListed <= 0 {
		o.MaxListed = 100
	}
	if len(o.CSRFKey) == 0 {
		o.CSRFKey = newCSRFKey()
	}
	h := &Handler{src: src, o: o, op: o.Operator, log: o.Logger, standalone: http.NewServeMux()}
	h.Register(auth.NewRouter(h.standalone, nil, Surface))
	h.standalone.HandleFunc("GET /", h.NotFound)
	return h
}

// Register registers every page on r, each with the access it needs.
func (h *Handler) Register(r Router) {
	r.Handle("GET /{$}", auth.Read, http.HandlerFunc(h.list))
	r.Handle("GET /canaries/{id}", auth.Read, http.HandlerFunc(h.report))
	if h.op != nil {
		r.Handle("POST /canaries/{id}/abort", auth.Operate, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.override(w, r, false) }))
		r.Handle("POST /canaries/{id}/promote", auth.Operate, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.override(w, r, true) }))
	}
}

// NotFound is the page of a path no page has.
func (h *Handler) NotFound(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, http.StatusNotFound, "./", "Not found", "There is no page at "+r.URL.Path+".")
}

// ServeHTTP serves the pages alone, without authentication.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.standalone.ServeHTTP(w, r) }

// maxIDLen: ids are 16 characters; anything much longer is not worth a store read.
const maxIDLen = 128

func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if id == "" || len(id) > maxIDLen {
		h.notFound(w, id)
		return
	}
	d, err := h.src.Get(ctx, id)
	switch {
	case errors.Is(err, analysis.ErrNotFound):
		h.notFound(w, id)
		return
	case err != nil:
		h.serverError(w, r, "../", fmt.Errorf("ui: get canary %s: %w", id, err))
		return
	}
	var a *config.Analysis
	if as, ok := h.src.(AnalysisSource); ok {
		if a, err = as.Analysis(ctx, d.Canary); err != nil {
			if ctx.Err() != nil {
				return
			}
			// The page still shows everything stored; it says what is missing.
			h.log.Warn("analysis snapshot unreadable", zap.String("canary", id), zap.Error(err))
			a = nil
		}
	}
	var queries []analysis.RenderedQuery
	if qr, ok := h.src.(QueryRenderer); ok {
		queries = qr.RenderQueries(a, d.Canary)
	} else {
		queries = analysis.RenderQueries(a, d.Canary)
	}
	p := buildReport(d, a, queries, h.o.Now())
	if h.o.Actuations != nil {
		acts, err := h.o.Actuations.Actuations(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("actuations unreadable", zap.String("canary", id), zap.Error(err))
			p.Notes = append(p.Notes, "The actuator actions could not be read: "+err.Error())
		}
		p.Actuations = actuationRows(acts)
	}
	if h.op != nil && d.Status == analysis.StatusRunning {
		p.Override = &overrideView{Token: h.csrfToken(ctx, id)}
	}
	h.write(w, http.StatusOK, "report", p)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	status := analysis.Status(r.URL.Query().Get("status"))
	if status != "" && !status.Valid() {
		var names []string
		for _, s := range analysis.Statuses {
			names = append(names, string(s))
		}
		h.errorPage(w, http.StatusBadRequest, "./", "Unknown status",
			fmt.Sprintf("status %q is not one of %s.", status, strings.Join(names, ", ")))
		return
	}
	q := analysis.ListQuery{Status: status, Limit: h.o.MaxListed}
	if v := r.URL.Query().Get("cursor"); v != "" {
		cur, ok := analysis.ParseCursor(v)
		if !ok {
			h.errorPage(w, http.StatusBadRequest, "./", "Bad page link",
				"This link to a page of the list is cut short or was edited. Start again from the newest canaries.")
			return
		}
		q.After = &cur
	}
	page, err := h.src.ListPage(r.Context(), q)
	if err != nil {
		h.serverError(w, r, "./", fmt.Errorf("ui: list canaries: %w", err))
		return
	}
	counts, err := h.src.CountByStatus(r.Context())
	if err != nil {
		h.serverError(w, r, "./", fmt.Errorf("ui: count canaries: %w", err))
		return
	}
	h.write(w, http.StatusOK, "list", buildList(page, counts, status, q.After != nil, h.o.Now()))
}

type errorView struct {
	pageBase
	Heading, Message string
}

func (h *Handler) notFound(w http.ResponseWriter, id string) {
	h.errorPage(w, http.StatusNotFound, "../", "Canary not found",
		fmt.Sprintf("No canary has the id %q. It may have been registered on another canaryd, or the link is cut short.", id))
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, root string, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	h.log.Error("page failed", zap.String("path", r.URL.Path), zap.Error(err))
	h.errorPage(w, http.StatusInternalServerError, root, "The canary store could not be read",
		"canaryd could not read this page's data; its log says why. Try again in a moment.")
}

func (h *Handler) errorPage(w http.ResponseWriter, code int, root, heading, msg string) {
	v := &errorView{pageBase: pageBase{Title: heading + " · canaryd", Root: root, Generated: formatTime(h.o.Now())}, Heading: heading, Message: msg}
	h.write(w, code, "error", v)
}

// write renders the whole page before sending anything, so that a template error is a
// clean 500 rather than half a page.
func (h *Handler) write(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("render page", zap.String("template", name), zap.Error(err))
		http.Error(w, "page rendering failed", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	// Nothing on these pages comes from elsewhere or runs a script.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" with
	// the page's own forms, which the cross-site check refuses. Other sites still get
	// nothing.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes()) // the client went away; nothing to do
}
