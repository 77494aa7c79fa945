// Package kayenta serves the part of Kayenta's REST API that Argo Rollouts' kayenta
// metric provider calls, at the server root as Kayenta serves it: the canary configs
// (canaryd's analyses), starting an execution (a one-shot judgement of the window in the
// request) and reading it back. Its bodies are Kayenta's shapes and are read leniently
// (unknown fields are ignored), since its clients send more than canaryd needs. It never
// judges anything itself: the scheduler does, and Kayenta's remote judge (POST /judge)
// is not here.
package kayenta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/jsonbody"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/web/auth"
)

// Surface names the callers of these routes without a token in the audit log
// ("kayenta:anonymous").
const Surface = "kayenta"

// Canaries is the scheduler as these routes use it; *analysis.Scheduler implements it.
type Canaries interface {
	Register(ctx context.Context, r analysis.Registration) (*analysis.Canary, error)
	Summary(ctx context.Context, id string) (*analysis.Detail, error)
	// Env is the config in force, whose analyses are the canary configs.
	Env() *analysis.Env
	// Analysis is the analysis a canary was registered with (its snapshot).
	Analysis(ctx context.Context, c *analysis.Canary) (*config.Analysis, error)
}

// Router registers a route with the access it needs; *auth.Router is one.
type Router interface {
	Handle(pattern string, a auth.Access, h http.Handler)
}

// Options wire the routes to the daemon. Canaries is required.
type Options struct {
	Canaries Canaries
	Logger   *zap.Logger
	// MaxBody caps a request body (default 64 KiB).
	MaxBody int64
}

// Handler is the Kayenta routes.
type Handler struct{ o Options }

// New returns the routes; Register puts them on the daemon's router.
func New(o Options) *Handler {
	if o.Canaries == nil {
		panic("kayenta: Options.Canaries is required") // a wiring mistake
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	return &Handler{o: o}
}

// Register registers the routes on r: reading needs read, starting an execution
// register, as the API's own routes.
func (h *Handler) Register(r Router) {
	r.Handle("GET /canaryConfig", auth.Read, http.HandlerFunc(h.configs))
	r.Handle("POST /canary/{configId}", auth.Register, http.HandlerFunc(h.start))
	r.Handle("GET /canary/{executionId}", auth.Read, http.HandlerFunc(h.execution))
}

// configIndex is one entry of Kayenta's canary config list.
type configIndex struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Applications []string `json:"applications"`
}

// configs lists every analysis as a canary config named after it, whatever the
// application and account parameters: canaryd's analyses belong to no application.
func (h *Handler) configs(w http.ResponseWriter, r *http.Request) {
	apps := []string{}
	if app := r.URL.Query().Get("application"); app != "" {
		apps = append(apps, app)
	}
	out := []configIndex{}
	if env := h.o.Canaries.Env(); env != nil {
		for _, name := range slices.Sorted(maps.Keys(env.Config.Analyses)) {
			out = append(out, configIndex{ID: name, Name: name, Applications: apps})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// executionRequest is Kayenta's CanaryExecutionRequest, the fields canaryd reads.
type executionRequest struct {
	Scopes     map[string]scopePair `json:"scopes"`
	Thresholds struct {
		Pass     float64 `json:"pass"`
		Marginal float64 `json:"marginal"`
	} `json:"thresholds"`
}

type scopePair struct {
	Control    *scope `json:"controlScope"`
	Experiment *scope `json:"experimentScope"`
}

type scope struct {
	Scope          string            `json:"scope"`
	Location       string            `json:"location"`
	Start          string            `json:"start"`
	End            string            `json:"end"`
	ExtendedParams map[string]string `json:"extendedScopeParams"`
}

// errorBody is every error's JSON, as the API's.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// start registers the execution as a one-shot canary over the scopes' window and
// answers 200 with its id, as Kayenta does (Argo accepts nothing else).
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	configID := r.PathValue("configId")
	env := h.o.Canaries.Env()
	var a *config.Analysis
	if env != nil {
		a = env.Config.Analyses[configID]
	}
	if a == nil {
		writeError(w, http.StatusNotFound, "configId", fmt.Sprintf("no canary config %q: the canary configs are canaryd's analyses (GET /canaryConfig)", configID))
		return
	}
	var req executionRequest
	if !h.decode(w, r, &req) {
		return
	}
	reg, fields, err := registration(a, r.URL.Query().Get("application"), req)
	if err != nil {
		h.fail(w, r, fields, err)
		return
	}
	c, err := h.o.Canaries.Register(r.Context(), reg)
	if err != nil {
		h.fail(w, r, fields, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"canaryExecutionId": c.ID})
}

// registration maps an execution onto a one-shot registration: the control scope is
// the baseline, the experiment scope the canary, each scope and location the cohort
// variables the analysis' kayenta block names, extendedScopeParams further cohort
// variables, the application the shared variable "application". fields maps the
// registration's field names back to the request's.
func registration(a *config.Analysis, app string, req executionRequest) (analysis.Registration, map[string]string, error) {
	fields := map[string]string{}
	if len(req.Scopes) != 1 {
		return analysis.Registration{}, fields, &analysis.InputError{Field: "scopes",
			Msg: fmt.Sprintf("canaryd judges one scope per execution, this request has %d", len(req.Scopes))}
	}
	var name string
	var pair scopePair
	for n, p := range req.Scopes {
		name, pair = n, p
	}
	prefix := "scopes." + name + "."
	reg := analysis.Registration{Analysis: a.Name}
	var window [2][2]time.Time // per cohort, start and end
	for i, co := range []struct {
		key   string
		sc    *scope
		field string
		vars  *map[string]string
	}{{"controlScope", pair.Control, "baseline", &reg.Baseline}, {"experimentScope", pair.Experiment, "canary", &reg.Canary}} {
		p := prefix + co.key
		if co.sc == nil {
			return reg, fields, &analysis.InputError{Field: p, Msg: "required"}
		}
		if co.sc.Scope == "" {
			return reg, fields, &analysis.InputError{Field: p + ".scope", Msg: "required"}
		}
		vars := map[string]string{}
		for k, v := range co.sc.ExtendedParams {
			vars[k] = v
			fields[co.field+"."+k] = p + ".extendedScopeParams." + k
		}
		vars[a.Kayenta.Scope] = co.sc.Scope
		fields[co.field+"."+a.Kayenta.Scope] = p + ".scope"
		if co.sc.Location != "" {
			vars[a.Kayenta.Location] = co.sc.Location
		}
		fields[co.field+"."+a.Kayenta.Location] = p + ".location"
		*co.vars = vars
		for j, t := range []struct{ key, v string }{{"start", co.sc.Start}, {"end", co.sc.End}} {
			if t.v == "" {
				return reg, fields, &analysis.InputError{Field: p + "." + t.key, Msg: "required: the window to judge"}
			}
			ts, err := time.Parse(time.RFC3339Nano, t.v)
			if err != nil || ts.IsZero() {
				return reg, fields, &analysis.InputError{Field: p + "." + t.key, Msg: fmt.Sprintf("%q is not an ISO 8601 instant (e.g. 2026-03-01T12:00:00Z)", t.v)}
			}
			window[i][j] = ts
		}
	}
	if !window[0][0].Equal(window[1][0]) || !window[0][1].Equal(window[1][1]) {
		return reg, fields, &analysis.InputError{Field: prefix + "experimentScope",
			Msg: "start and end must be the control scope's: canaryd compares both cohorts over the same window"}
	}
	reg.Start, reg.End = window[1][0], window[1][1]
	fields["start"], fields["end"] = prefix+"experimentScope.start", prefix+"experimentScope.end"
	if app != "" {
		reg.Vars = map[string]string{"application": app}
		fields["vars.application"] = "application"
	}
	if t := req.Thresholds; t.Pass != 0 || t.Marginal != 0 {
		reg.Thresholds = &analysis.Thresholds{Pass: t.Pass, Marginal: t.Marginal}
	}
	reg.Name = cut(fmt.Sprintf("kayenta %s: %s vs %s", a.Name, pair.Experiment.Scope, pair.Control.Scope), 200)
	return reg, fields, nil
}

// cut shortens s to at most n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// execution is Kayenta's CanaryExecutionStatusResponse, the part its clients read.
type execution struct {
	CanaryExecutionID string           `json:"canaryExecutionId"`
	CanaryConfigID    string           `json:"canaryConfigId"`
	Complete          bool             `json:"complete"`
	Status            string           `json:"status"`
	Result            *executionResult `json:"result,omitempty"`
	Exception         *exception       `json:"exception,omitempty"`
	StartTimeIso      string           `json:"startTimeIso"`
	EndTimeIso        string           `json:"endTimeIso,omitempty"`
}

type executionResult struct {
	JudgeResult judgeResult `json:"judgeResult"`
}

type judgeResult struct {
	JudgeName   string         `json:"judgeName"`
	Score       judgeScore     `json:"score"`
	Results     []metricResult `json:"results"`
	GroupScores []groupScore   `json:"groupScores"`
}

type judgeScore struct {
	Score                float64 `json:"score"`
	Classification       string  `json:"classification"`
	ClassificationReason string  `json:"classificationReason"`
}

type metricResult struct {
	Name                 string   `json:"name"`
	Classification       string   `json:"classification"`
	ClassificationReason string   `json:"classificationReason"`
	Groups               []string `json:"groups"`
	Critical             bool     `json:"critical"`
}

type groupScore struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

type exception struct {
	Message string `json:"message"`
}

// execution answers an execution's state: not complete while the canary runs; then its
// score, with a failed canary's below the marginal threshold (0 when a critical metric
// failed or could not be judged, or when it was aborted); a canary that ended in error
// has no score, as a Kayenta execution that failed has none.
func (h *Handler) execution(w http.ResponseWriter, r *http.Request) {
	d, err := h.o.Canaries.Summary(r.Context(), r.PathValue("executionId"))
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	e := execution{CanaryExecutionID: d.ID, CanaryConfigID: d.Analysis, Status: "running",
		StartTimeIso: d.CreatedAt.UTC().Format(time.RFC3339Nano)}
	if !d.Status.Final() {
		writeJSON(w, http.StatusOK, e)
		return
	}
	e.Complete = true
	e.EndTimeIso = d.Ended().UTC().Format(time.RFC3339Nano)
	if d.Status == analysis.StatusError {
		e.Status = "terminal"
		e.Exception = &exception{Message: d.Reason}
		writeJSON(w, http.StatusOK, e)
		return
	}
	e.Status = "succeeded"
	jr := judgeResult{JudgeName: "canaryd", Results: []metricResult{}, GroupScores: []groupScore{}}
	var last *analysis.IntervalResult
	if n := len(d.Results); n > 0 {
		last = &d.Results[n-1]
		for _, m := range last.Metrics {
			mr := metricResult{Name: m.Name, Classification: classification(m.Classification), ClassificationReason: m.Reason, Critical: m.Critical, Groups: []string{}}
			if m.Group != "" {
				mr.Groups = append(mr.Groups, m.Group)
			}
			jr.Results = append(jr.Results, mr)
		}
		for _, g := range last.Score.Groups {
			jr.GroupScores = append(jr.GroupScores, groupScore{Name: g.Name, Score: g.Score})
		}
	}
	jr.Score = judgeScore{ClassificationReason: d.Reason}
	if d.Score != nil {
		jr.Score.Score = *d.Score
	}
	switch d.Status {
	case analysis.StatusPass:
		jr.Score.Classification = "Pass"
	case analysis.StatusMarginal:
		jr.Score.Classification = "Marginal"
	default: // fail, aborted
		jr.Score.Classification = "Fail"
		if !h.failedOnScore(r.Context(), d, last) {
			jr.Score.Score = 0
		}
	}
	e.Result = &executionResult{JudgeResult: jr}
	writeJSON(w, http.StatusOK, e)
}

// failedOnScore reports whether a failed canary failed on its score alone, which is then
// below its marginal threshold and reported as it is: not aborted, no critical metric
// failed or unjudged in the last interval, and a score under the marginal threshold it
// was judged by (its own, or its analysis snapshot's).
func (h *Handler) failedOnScore(ctx context.Context, d *analysis.Detail, last *analysis.IntervalResult) bool {
	if d.Status != analysis.StatusFail || d.Score == nil || last == nil ||
		len(last.Score.CriticalFailures)+len(last.Score.CriticalUnjudged) > 0 {
		return false
	}
	a, err := h.o.Canaries.Analysis(ctx, d.Canary)
	if err != nil {
		return false
	}
	return *d.Score < d.ScoreThresholds(a.Score).Marginal
}

// classification is a metric's class as Kayenta names it.
func classification(c judge.Classification) string {
	switch c {
	case judge.ClassPass:
		return "Pass"
	case judge.ClassHigh:
		return "High"
	case judge.ClassLow:
		return "Low"
	case judge.ClassNoData:
		return "Nodata"
	}
	return "Error"
}

// decode reads one JSON object into v, ignoring unknown fields (Kayenta's clients send
// fields canaryd has no use for), and writes the 4xx itself when it fails.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, berr := jsonbody.Read(w, r, h.o.MaxBody)
	if berr != nil {
		writeError(w, berr.Status, "", berr.Msg)
		return false
	}
	// A decoder, as before the body was read whole: an empty body is io.EOF, and what
	// follows the first object is ignored.
	err := json.NewDecoder(bytes.NewReader(data)).Decode(v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "", "the body must be a JSON object: Kayenta's CanaryExecutionRequest")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		writeError(w, http.StatusBadRequest, typeErr.Field, "must be "+jsonKind(typeErr.Type.Kind().String())+", not a JSON "+typeErr.Value)
	default:
		writeError(w, http.StatusBadRequest, "", "the body must be a JSON object: "+err.Error())
	}
	return false
}

// fail maps the scheduler's errors to status codes, naming a bad field as the request
// named it.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, fields map[string]string, err error) {
	var ie *analysis.InputError
	switch {
	case errors.As(err, &ie):
		field := ie.Field
		if f, ok := fields[field]; ok {
			field = f
		} else if head, _, ok := strings.Cut(field, "."); ok && fields[head] != "" {
			field = fields[head]
		}
		writeError(w, http.StatusBadRequest, field, ie.Msg)
	case errors.As(err, new(*analysis.LimitError)):
		writeError(w, http.StatusTooManyRequests, "", err.Error())
	case errors.Is(err, analysis.ErrNotFound):
		writeError(w, http.StatusNotFound, "executionId", "no such canary execution")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EDQUOT):
		h.o.Logger.Error("store cannot write", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "", "the store cannot write; nothing was changed: retry later")
	case errors.Is(err, context.Canceled):
		// The client went away.
	default:
		h.o.Logger.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "", "internal error (see canaryd's log)")
	}
}

// jsonKind names a Go kind as JSON does.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct", "ptr":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a number"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, errorBody{Error: msg, Field: field})
}
