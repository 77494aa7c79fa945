// Package v1 is canaryd's HTTP API: register, read, list, abort and promote canaries,
// approvals and the audit log, plus /metrics, /healthz, /readyz and /-/reload. It owns the
// JSON shapes pipelines depend on and strict decoding of requests, and registers each
// route with the role it needs (API.Register, through package web's router). It works
// against small interfaces defined here (Reader, Registrar, Operator, Actuations); it
// never decides a canary's fate itself (the scheduler does) and never writes to the store
// directly.
package v1

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/web/auth"
)

// DefaultMaxBody caps a request body; a registration is a few hundred bytes.
const DefaultMaxBody = 64 << 10

// Reader is where the API reads canaries; *analysis.Scheduler implements it.
type Reader interface {
	// Summary is a canary with its intervals' results, without their points.
	Summary(ctx context.Context, id string) (*analysis.Detail, error)
	ListPage(ctx context.Context, q analysis.ListQuery) (analysis.Page, error)
}

// AnalysisReader is a Reader that also reads the analysis a canary was registered with
// (its snapshot), for the detail's rendered queries; *analysis.Scheduler implements it.
type AnalysisReader interface {
	Analysis(ctx context.Context, c *analysis.Canary) (*config.Analysis, error)
}

// QueryRenderer renders an analysis' queries as they are sent to its provider (values
// escaped for its language); *analysis.Scheduler implements it. Without one the queries
// are rendered with the values as they are.
type QueryRenderer interface {
	RenderQueries(a *config.Analysis, c *analysis.Canary) []analysis.RenderedQuery
}

// Registrar registers canaries (POST /api/v1/canaries), idempotently when the request has
// a key; *analysis.Scheduler implements it.
type Registrar interface {
	RegisterByKey(ctx context.Context, r analysis.Registration) (*analysis.Canary, analysis.Outcome, error)
}

// Operator ends running canaries by hand (abort, promote); *analysis.Scheduler
// implements it.
type Operator interface {
	Abort(ctx context.Context, id, reason string, actuate bool) (*analysis.Canary, error)
	Promote(ctx context.Context, id, reason string) (*analysis.Canary, error)
}

// Options wire the API to the daemon. Reader is required; a nil Registrar, Operator or
// Actuations leaves its routes out.
type Options struct {
	Reader    Reader
	Registrar Registrar
	Operator  Operator
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Reload reloads the config file (POST /-/reload); nil disables the endpoint.
	Reload func(ctx context.Context) error
	// Ready reports whether the daemon takes requests (GET /readyz); nil is always ready.
	Ready   func() error
	Logger  *zap.Logger
	MaxBody int64
	// Actuations serves approve, reject, a canary's actuations and the audit log
	// (actions.go); nil answers 404 there.
	Actuations Actuations
	// Clock is the scheduler's clock, which the audit log's relative times (since=1h)
	// count from (default analysis.RealClock).
	Clock analysis.Clock
}

// Router registers a route with the access it needs; *auth.Router is one.
type Router interface {
	Handle(pattern string, a auth.Access, h http.Handler)
}

// API is the API's routes.
type API struct {
	s *server
	// standalone is the API served alone, without authentication (ServeHTTP).
	standalone *http.ServeMux
}

type server struct {
	o   Options
	log *zap.Logger
}

// New returns the API. Register puts its routes on the daemon's router (package web);
// ServeHTTP serves it alone, without authentication, as tests and tools do.
func New(o Options) *API {
	if o.Reader == nil {
		panic("v1: Options.Reader is required") // a wiring mistake
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.NewRegistry()
	}
	if o.Clock == nil {
		o.Clock = analysis.RealClock{}
	}
	a := &API{s: &server{o: o, log: o.Logger}, standalone: http.NewServeMux()}
	a.Register(auth.NewRouter(a.standalone, nil, Surface))
	return a
}

// Surface names the API's callers without a token in the audit log ("api:NAME").
const Surface = "api"

// Register registers every route of the API on r, each with the access it needs.
func (a *API) Register(r Router) {
	s := a.s
	if s.o.Registrar != nil {
		r.Handle("POST /api/v1/canaries", auth.Register, http.HandlerFunc(s.register))
	}
	r.Handle("GET /api/v1/canaries", auth.Read, http.HandlerFunc(s.list))
	r.Handle("GET /api/v1/canaries/{id}", auth.Read, http.HandlerFunc(s.get))
	if s.o.Operator != nil {
		r.Handle("POST /api/v1/canaries/{id}/abort", auth.Operate, http.HandlerFunc(s.abort))
		r.Handle("POST /api/v1/canaries/{id}/promote", auth.Operate, http.HandlerFunc(s.promote))
	}
	r.Handle("POST /api/v1/canaries/{id}/approve", auth.Operate, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.decide(w, r, true) }))
	r.Handle("POST /api/v1/canaries/{id}/reject", auth.Operate, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.decide(w, r, false) }))
	r.Handle("GET /api/v1/canaries/{id}/actuations", auth.Read, http.HandlerFunc(s.actuations))
	r.Handle("GET /api/v1/audit", auth.Read, http.HandlerFunc(s.audit))
	r.Handle("GET /metrics", auth.Open("metrics"), promhttp.HandlerFor(s.o.Gatherer, promhttp.HandlerOpts{}))
	r.Handle("GET /healthz", auth.Open("healthz"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	}))
	r.Handle("GET /readyz", auth.Open("readyz"), http.HandlerFunc(s.ready))
	r.Handle("POST /-/reload", auth.Operate, http.HandlerFunc(s.reload))
}

// ServeHTTP serves the API alone, without authentication.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.standalone.ServeHTTP(w, r) }

// errorBody is every error's JSON: what is wrong and, for bad input, which field.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, errorBody{Error: msg, Field: field})
}

// preflightErrorBody is a registration refused by a failed preflight (409): the first
// failed actuator, and every check's result.
type preflightErrorBody struct {
	Error     string                     `json:"error"`
	Actuator  string                     `json:"actuator"`
	Preflight []analysis.PreflightResult `json:"preflight"`
}

// registerRequest is POST /api/v1/canaries' body. Durations and the start time are
// strings so that a bad one is reported with its field name.
type registerRequest struct {
	Name     string            `json:"name"`
	Analysis string            `json:"analysis"`
	Baseline map[string]string `json:"baseline"`
	Canary   map[string]string `json:"canary"`
	Vars     map[string]string `json:"vars"`
	Lifetime string            `json:"lifetime"`
	Interval string            `json:"interval"`
	Start    string            `json:"start"`
	// End makes the registration a one-shot judgement of start..end (analysis.Registration.End).
	End        string               `json:"end"`
	Thresholds *analysis.Thresholds `json:"thresholds"`
	DryRun     bool                 `json:"dry_run"`
	Key        string               `json:"key"`
}

var unknownFieldRe = regexp.MustCompile(`^json: unknown field "(.*)"$`)

// decode reads exactly one JSON object into v, rejecting unknown fields, keys in another
// letter case and duplicate keys, and writes the 4xx itself when it fails.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "", "Content-Type must be application/json")
			return false
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBody))
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(v)
	}
	if errors.Is(err, io.EOF) {
		if optional {
			return true
		}
		writeError(w, http.StatusBadRequest, "", "the body must be a JSON object")
		return false
	}
	if err == nil {
		// A second value (or garbage) after the object is an error too.
		if _, err2 := dec.Token(); !errors.Is(err2, io.EOF) {
			writeError(w, http.StatusBadRequest, "", "the body must hold a single JSON object")
			return false
		}
		// Strict is case-exact and has no duplicate keys, which encoding/json allows.
		if ke := checkKeys(data, reflect.TypeOf(v)); ke != nil {
			writeError(w, http.StatusBadRequest, ke.Path, ke.Msg)
			return false
		}
		return true
	}
	var (
		maxErr    *http.MaxBytesError
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case errors.As(err, &maxErr):
		writeError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			writeError(w, http.StatusBadRequest, "", "the body must be a JSON object")
		} else {
			// encoding/json names a map by its field alone (vars): name the key too.
			field := typeErr.Field
			if k := badMapKey(data, field); k != "" {
				field += "." + k
			}
			writeError(w, http.StatusBadRequest, field, fmt.Sprintf("must be %s, not a JSON %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value))
		}
	case errors.As(err, &syntaxErr):
		writeError(w, http.StatusBadRequest, "", fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err))
	case errors.Is(err, io.ErrUnexpectedEOF):
		writeError(w, http.StatusBadRequest, "", "malformed JSON: the body ends early")
	default:
		if m := unknownFieldRe.FindStringSubmatch(err.Error()); m != nil {
			writeError(w, http.StatusBadRequest, m[1], "unknown field")
			return false
		}
		writeError(w, http.StatusBadRequest, "", err.Error())
	}
	return false
}

// badMapKey is the first key (in sorted order) of the top-level object field whose
// value is not a JSON string, or "" when field is not such an object.
func badMapKey(data []byte, field string) string {
	var top map[string]json.RawMessage
	if strings.Contains(field, ".") || json.Unmarshal(data, &top) != nil {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(top[field], &m) != nil {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v := bytes.TrimSpace(v); len(v) == 0 || v[0] != '"' {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	return keys[0]
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a number"
}

func parseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if md, merr := model.ParseDuration(v); merr == nil {
		d, err = time.Duration(md), nil // also takes 1d and 1w, as Prometheus does
	}
	if err != nil {
		return 0, &analysis.InputError{Field: field, Msg: fmt.Sprintf("%q is not a duration (e.g. 30s, 10m, 1h30m)", v)}
	}
	if d <= 0 {
		return 0, &analysis.InputError{Field: field, Msg: "must be > 0"}
	}
	return d, nil
}

func (s *server) register(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if !s.decode(w, r, &req, false) {
		return
	}
	reg := analysis.Registration{
		Name: req.Name, Analysis: req.Analysis, Baseline: req.Baseline, Canary: req.Canary,
		Vars: req.Vars, DryRun: req.DryRun, Key: req.Key,
	}
	if err := analysis.CheckKey(req.Key); err != nil {
		s.fail(w, r, err)
		return
	}
	var err error
	if reg.Lifetime, err = parseDuration("lifetime", req.Lifetime); err != nil {
		s.fail(w, r, err)
		return
	}
	if reg.Interval, err = parseDuration("interval", req.Interval); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Start != "" {
		if reg.Start, err = time.Parse(time.RFC3339Nano, req.Start); err != nil {
			writeError(w, http.StatusBadRequest, "start", fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)", req.Start))
			return
		}
		// The zero time is what "no start" is inside; given explicitly it is a mistake
		// (an unset timestamp), not "now".
		if reg.Start.IsZero() {
			writeError(w, http.StatusBadRequest, "start", fmt.Sprintf("%q is the zero time; leave start out to mean now", req.Start))
			return
		}
	}
	if req.End != "" {
		if reg.End, err = time.Parse(time.RFC3339Nano, req.End); err != nil || reg.End.IsZero() {
			writeError(w, http.StatusBadRequest, "end", fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2026-03-01T12:30:00Z)", req.End))
			return
		}
	}
	reg.Thresholds = req.Thresholds
	c, outcome, err := s.o.Registrar.RegisterByKey(r.Context(), reg)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/canaries/"+c.ID)
	if outcome != analysis.Existing {
		writeJSON(w, http.StatusCreated, viewOf(&analysis.Detail{Canary: c}, true))
		return
	}
	// A repeat: the canary as it is now, in the same shape, with the intervals it has
	// judged counted (a retrying pipeline reads its status and verdict here).
	d, err := s.o.Reader.Summary(r.Context(), c.ID)
	if err != nil {
		d = &analysis.Detail{Canary: c} // deleted meanwhile: the canary as it was found
	}
	writeJSON(w, http.StatusOK, viewOf(d, true))
}

// fail maps the scheduler's errors to status codes.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ie *analysis.InputError
		ke *analysis.KeyConflictError
		pe *analysis.PreflightError
	)
	switch {
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, ie.Field, ie.Msg)
	case errors.As(err, &pe):
		body := preflightErrorBody{Error: pe.Error(), Preflight: pe.Results}
		for _, r := range pe.Results {
			if !r.OK {
				body.Actuator = r.Actuator
				break
			}
		}
		writeJSON(w, http.StatusConflict, body)
	case errors.As(err, new(*analysis.LimitError)):
		writeError(w, http.StatusTooManyRequests, "", err.Error())
	case errors.Is(err, analysis.ErrNotFound):
		writeError(w, http.StatusNotFound, "", "canary not found")
	case errors.Is(err, analysis.ErrFinished):
		writeError(w, http.StatusConflict, "", err.Error())
	case errors.As(err, &ke):
		writeError(w, http.StatusConflict, ke.Field, ke.Error())
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EDQUOT):
		// The disk, not the request: say so, so that the caller retries and the SRE
		// knows where to look. Reads keep working.
		s.log.Error("store cannot write", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "", "the store cannot write ("+rootCause(err).Error()+"); nothing was changed, reads still work: retry later")
	case errors.Is(err, context.Canceled):
		// The client went away.
	default:
		s.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "", "internal error; see canaryd's log")
	}
}

// rootCause is the innermost wrapped error, e.g. "no space left on device".
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

var idRe = regexp.MustCompile(`^[a-z2-7]{1,64}$`)

func (s *server) id(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !idRe.MatchString(id) {
		writeError(w, http.StatusNotFound, "", "canary not found")
		return "", false
	}
	return id, true
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	d, err := s.o.Reader.Summary(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := viewOf(d, true)
	// The queries as sent for each cohort, so that a nodata can be debugged in the
	// provider's own UI. Without the snapshot the answer is the rest.
	if ar, ok := s.o.Reader.(AnalysisReader); ok {
		if a, err := ar.Analysis(r.Context(), d.Canary); err == nil {
			if qr, ok := s.o.Reader.(QueryRenderer); ok {
				v.Queries = qr.RenderQueries(a, d.Canary)
			} else {
				v.Queries = analysis.RenderQueries(a, d.Canary)
			}
		} else if r.Context().Err() == nil {
			s.log.Warn("analysis snapshot unreadable", zap.String("canary", id), zap.Error(err))
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// List pages: a page holds DefaultListLimit canaries unless ?limit= asks for another
// number up to MaxListLimit.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "", "malformed query string: "+err.Error())
		return
	}
	for k, vs := range q {
		switch k {
		case "status", "limit", "cursor", "key":
			if len(vs) > 1 {
				writeError(w, http.StatusBadRequest, k, "given more than once")
				return
			}
		default:
			writeError(w, http.StatusBadRequest, k, "unknown query parameter")
			return
		}
	}
	lq := analysis.ListQuery{Status: analysis.Status(q.Get("status")), Limit: DefaultListLimit}
	if lq.Status != "" && !lq.Status.Valid() {
		writeError(w, http.StatusBadRequest, "status", fmt.Sprintf("%q is not one of %v", lq.Status, analysis.Statuses))
		return
	}
	if v := q.Get("key"); v != "" {
		if err := analysis.CheckKey(v); err != nil {
			s.fail(w, r, err)
			return
		}
		lq.Key = v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit", fmt.Sprintf("must be a whole number from 1 to %d", MaxListLimit))
			return
		}
		lq.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		cur, ok := analysis.ParseCursor(v)
		if !ok {
			writeError(w, http.StatusBadRequest, "cursor", "not a cursor of this API: pass next_cursor of the previous page as it is")
			return
		}
		lq.After = &cur
	}
	page, err := s.o.Reader.ListPage(r.Context(), lq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Streamed, one canary at a time: the page is never encoded whole in memory.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 16<<10)
	enc := json.NewEncoder(bw)
	bw.WriteString(`{"canaries":[`)
	for i, c := range page.Canaries {
		if i > 0 {
			bw.WriteByte(',')
		}
		if err := enc.Encode(viewOf(&analysis.Detail{Canary: c}, false)); err != nil {
			s.log.Error("encode canary", zap.String("canary", c.ID), zap.Error(err))
			return
		}
	}
	bw.WriteString("]")
	if page.Next != nil {
		bw.WriteString(`,"next_cursor":`)
		_ = enc.Encode(page.Next.Encode())
	}
	bw.WriteString("}\n")
	_ = bw.Flush() // the client went away; nothing to do
}

// actionRequest is the optional body of abort and promote.
type actionRequest struct {
	Reason string `json:"reason"`
}

func (s *server) abort(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	actuate := true
	for k, vs := range r.URL.Query() {
		if k != "actuate" {
			writeError(w, http.StatusBadRequest, k, "unknown query parameter")
			return
		}
		switch strings.ToLower(vs[len(vs)-1]) {
		case "true", "1":
		case "false", "0":
			actuate = false
		default:
			writeError(w, http.StatusBadRequest, "actuate", "must be true or false")
			return
		}
	}
	var req actionRequest
	if !s.decode(w, r, &req, true) {
		return
	}
	if _, err := s.o.Operator.Abort(r.Context(), id, req.Reason, actuate); err != nil {
		s.fail(w, r, err)
		return
	}
	s.get(w, r)
}

func (s *server) promote(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "", "promote takes no query parameters")
		return
	}
	var req actionRequest
	if !s.decode(w, r, &req, true) {
		return
	}
	if _, err := s.o.Operator.Promote(r.Context(), id, req.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	s.get(w, r)
}

func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	if s.o.Ready != nil {
		if err := s.o.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, "", err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ready\n")
}

func (s *server) reload(w http.ResponseWriter, r *http.Request) {
	if s.o.Reload == nil {
		writeError(w, http.StatusNotFound, "", "reload is not enabled")
		return
	}
	if err := s.o.Reload(r.Context()); err != nil {
		writeError(w, http.StatusInternalServerError, "", "reload failed, the old config stays: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

// canaryView is a canary as the API shows it.
type canaryView struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Analysis     string            `json:"analysis"`
	AnalysisHash string            `json:"analysis_hash"`
	Status       analysis.Status   `json:"status"`
	Reason       string            `json:"reason,omitempty"`
	Score        *float64          `json:"score"`
	Verdict      judge.Verdict     `json:"verdict,omitempty"`
	Baseline     map[string]string `json:"baseline"`
	Canary       map[string]string `json:"canary"`
	Vars         map[string]string `json:"vars,omitempty"`
	DryRun       bool              `json:"dry_run"`
	Key          string            `json:"key,omitempty"`
	Start        time.Time         `json:"start"`
	Lifetime     string            `json:"lifetime"`
	Interval     string            `json:"interval"`
	Warmup       string            `json:"warmup"`
	// Thresholds are the canary's own score thresholds, when it was registered with them.
	Thresholds *analysis.Thresholds `json:"thresholds,omitempty"`
	// IntervalCount is how many intervals the lifetime holds; Judged how many are done.
	IntervalCount int  `json:"interval_count"`
	Judged        *int `json:"intervals_judged,omitempty"`
	// NextIntervalAt is when the next interval is judged, for running canaries.
	NextIntervalAt *time.Time `json:"next_interval_at,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	// FirstFailAt is when an interval first judged the canary fail.
	FirstFailAt *time.Time `json:"first_fail_at,omitempty"`
	// Recovery is the recovery watch of a failed or aborted canary (its own outcome; the
	// status stays fail or aborted).
	Recovery  *recoveryView     `json:"recovery,omitempty"`
	Intervals []intervalView    `json:"intervals,omitempty"`
	Actions   []analysis.Action `json:"actions,omitempty"`
	// Queries are each metric's queries rendered for both cohorts (the detail only).
	Queries []analysis.RenderedQuery `json:"queries,omitempty"`
	// Warnings are what the canary was registered despite: its failed preflight checks,
	// in a sentence each.
	Warnings []string `json:"warnings,omitempty"`
	// Preflight are the actuators' preflight checks run at registration (the detail).
	Preflight []analysis.PreflightResult `json:"preflight,omitempty"`
}

// recoveryView is a canary's recovery watch as the API shows it (without the stored
// reference points).
type recoveryView struct {
	Outcome      analysis.RecoveryOutcome  `json:"outcome"`
	Reason       string                    `json:"reason,omitempty"`
	Within       string                    `json:"within"`
	Metrics      []string                  `json:"metrics"`
	RolledBackAt *time.Time                `json:"rolled_back_at,omitempty"`
	Deadline     *time.Time                `json:"deadline,omitempty"`
	NextCheckAt  *time.Time                `json:"next_check_at,omitempty"`
	Checks       int                       `json:"checks"`
	DecidedAt    *time.Time                `json:"decided_at,omitempty"`
	Rollbacks    []analysis.RollbackAction `json:"rollbacks,omitempty"`
	Figures      []analysis.RecoveryFigure `json:"figures,omitempty"`
}

func recoveryOf(r *analysis.Recovery) *recoveryView {
	if r == nil {
		return nil
	}
	v := &recoveryView{Outcome: r.Outcome, Reason: r.Reason, Within: model.Duration(r.Within).String(), Metrics: r.Metrics,
		RolledBackAt: r.RolledBackAt, Deadline: r.Deadline, Checks: r.Checks, DecidedAt: r.DecidedAt,
		Rollbacks: r.Rollbacks, Figures: r.Figures}
	if !r.Outcome.Final() {
		next := r.NextAt
		v.NextCheckAt = &next
	}
	return v
}

type intervalView struct {
	Index            int                  `json:"index"`
	Start            time.Time            `json:"start"`
	End              time.Time            `json:"end"`
	JudgedAt         time.Time            `json:"judged_at"`
	Score            float64              `json:"score"`
	Verdict          judge.Verdict        `json:"verdict"`
	Reason           string               `json:"reason"`
	Groups           []judge.GroupScore   `json:"groups"`
	CriticalFailures []string             `json:"critical_failures,omitempty"`
	CriticalUnjudged []string             `json:"critical_unjudged,omitempty"`
	Errors           int                  `json:"errors,omitempty"`
	Metrics          []judge.MetricResult `json:"metrics"`
}

func viewOf(d *analysis.Detail, detail bool) *canaryView {
	c := d.Canary
	v := &canaryView{
		ID: c.ID, Name: c.Name, Analysis: c.Analysis, AnalysisHash: c.AnalysisHash,
		Status: c.Status, Reason: c.Reason, Score: c.Score, Verdict: c.Verdict,
		Baseline: c.Baseline, Canary: c.Canary, Vars: c.Vars, DryRun: c.DryRun, Key: c.Key,
		Start: c.Start, Lifetime: model.Duration(c.Lifetime).String(), Interval: model.Duration(c.Interval).String(),
		Warmup: model.Duration(c.Warmup).String(), Thresholds: c.Thresholds, IntervalCount: c.Intervals,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, EndedAt: c.EndedAt,
		FirstFailAt: c.FirstFailAt, Recovery: recoveryOf(c.Recovery),
		Warnings: analysis.PreflightWarnings(c.Preflight),
	}
	if c.Status == analysis.StatusRunning {
		next := c.IntervalEnd(c.NextIndex)
		v.NextIntervalAt = &next
	}
	if detail {
		// Intervals inside the warmup are skipped, not judged: count what was recorded.
		n := len(d.Results)
		v.Judged = &n
		v.Actions = d.Actions
		v.Preflight = c.Preflight
		for _, r := range d.Results {
			v.Intervals = append(v.Intervals, intervalView{
				Index: r.Index, Start: r.Start, End: r.End, JudgedAt: r.JudgedAt,
				Score: r.Score.Score, Verdict: r.Score.Verdict, Reason: r.Score.Reason, Groups: r.Score.Groups,
				CriticalFailures: r.Score.CriticalFailures, CriticalUnjudged: r.Score.CriticalUnjudged, Errors: r.Score.Errors, Metrics: r.Metrics,
			})
		}
	}
	return v
}
