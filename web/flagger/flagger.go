// Package flagger serves Flagger's webhooks at POST /api/v1/flagger/{type}: pre-rollout
// registers the canary (keyed by Flagger's namespace, name and checksum, so a retry finds
// the same one), rollout, confirm-promotion and rollback answer from its status as Flagger
// reads answers (a 2xx is yes, a 4xx a definite no, since Flagger retries a 5xx),
// post-rollout records Flagger's outcome and event writes the audit log. Bodies are read
// leniently (Flagger's payload may grow fields); a missing field is a 4xx whose body Flagger
// shows. It never judges a canary itself and never keeps or echoes the token a webhook's
// metadata carries (web/auth reads it).
package flagger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/internal/jsonbody"
	"github.com/canaryd/canaryd/web/auth"
)

// Canaries is the scheduler as the webhooks use it; *analysis.Scheduler implements it.
type Canaries interface {
	RegisterByKey(ctx context.Context, r analysis.Registration) (*analysis.Canary, analysis.Outcome, error)
	ListPage(ctx context.Context, q analysis.ListQuery) (analysis.Page, error)
	Abort(ctx context.Context, id, reason string, actuate bool) (*analysis.Canary, error)
	Promote(ctx context.Context, id, reason string) (*analysis.Canary, error)
}

// Events is the audit log as the event webhook writes it; *guard.Guard implements it.
type Events interface {
	RecordEvent(ctx context.Context, e guard.Event) error
}

// Options wire the webhooks. Canaries is required; nil Events answers the event webhook
// with 404.
type Options struct {
	Canaries Canaries
	Events   Events
	Logger   *zap.Logger
	// MaxBody caps a request body (default 64 KiB).
	MaxBody int64
}

// Router registers a route with the access it needs; *auth.Router is one.
type Router interface {
	Handle(pattern string, a auth.Access, h http.Handler)
}

// Webhooks is Flagger's routes.
type Webhooks struct {
	o   Options
	log *zap.Logger
}

// New returns the webhooks; Register puts them on the daemon's router.
func New(o Options) *Webhooks {
	if o.Canaries == nil {
		panic("flagger: Options.Canaries is required") // a wiring mistake
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	return &Webhooks{o: o, log: o.Logger}
}

// The webhook types, as Flagger names them in a Canary's analysis.webhooks[].type.
const (
	PreRollout       = "pre-rollout"
	Rollout          = "rollout"
	ConfirmRollout   = "confirm-rollout"
	ConfirmPromotion = "confirm-promotion"
	PostRollout      = "post-rollout"
	Rollback         = "rollback"
	Event            = "event"
)

// TokenKey is the metadata key of the token a webhook presents (Flagger sends no headers).
const TokenKey = "token"

// Register registers every webhook on r with the role it needs: register for what
// creates, ends or records (pre-rollout, post-rollout, event), read for the questions.
func (h *Webhooks) Register(r Router) {
	for _, hook := range []struct {
		typ    string
		access auth.Access
		serve  func(http.ResponseWriter, *http.Request, *payload)
	}{
		{PreRollout, auth.Register, h.preRollout},
		{Rollout, auth.Read, h.rollout},
		{ConfirmRollout, auth.Read, h.confirmRollout},
		{ConfirmPromotion, auth.Read, h.confirmPromotion},
		{PostRollout, auth.Register, h.postRollout},
		{Rollback, auth.Read, h.rollback},
		{Event, auth.Register, h.event},
	} {
		a := auth.Webhook(hook.access, "flagger", "metadata."+TokenKey, tokenOf)
		r.Handle("POST /api/v1/flagger/"+hook.typ, a, h.handler(hook.typ, hook.serve))
	}
}

// tokenOf is the token in a webhook body's metadata, "" for none.
func tokenOf(body []byte) string {
	var p struct {
		Metadata map[string]any `json:"metadata"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	s, _ := p.Metadata[TokenKey].(string)
	return s
}

// payload is Flagger's CanaryWebhookPayload (pkg/apis/flagger/v1beta1): the canary's name
// and namespace, the phase, the checksum of its target's spec and the webhook's metadata.
type payload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// key is the registration key of a rollout: one canary per Flagger canary and revision.
func (p *payload) key() string {
	return "flagger/" + p.Namespace + "/" + p.Name + "/" + p.Checksum
}

// Kubernetes' name rules (DNS-1123): a namespace is a label, a canary's name a subdomain.
var (
	namespaceRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	nameRe      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	// checksumRe is what Flagger's ComputeHash makes (safe-encoded FNV), with room.
	checksumRe = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
)

// check refuses a payload the webhook cannot act on, naming the field.
func (p *payload) check(typ string) *answerError {
	switch {
	case p.Name == "":
		return badField("name", "required: the Flagger canary's name")
	case len(p.Name) > 253 || !nameRe.MatchString(p.Name):
		return badField("name", "must be a Kubernetes object name (lowercase letters, digits, - and ., at most 253)")
	case p.Namespace == "":
		return badField("namespace", "required: the Flagger canary's namespace")
	case len(p.Namespace) > 63 || !namespaceRe.MatchString(p.Namespace):
		return badField("namespace", "must be a Kubernetes namespace (lowercase letters, digits and -, at most 63)")
	}
	if p.Checksum == "" {
		if typ == ConfirmRollout || typ == Event {
			return nil // asked before the revision's checksum exists, or about no canary
		}
		return badField("checksum", "required: Flagger's checksum of the revision, which keys the canary")
	}
	if !checksumRe.MatchString(p.Checksum) {
		return badField("checksum", "must be letters and digits, at most 64")
	}
	if err := analysis.CheckKey(p.key()); err != nil {
		return badField("name", fmt.Sprintf("too long: the canary's key flagger/NAMESPACE/NAME/CHECKSUM must fit in %d bytes", analysis.MaxKeyLen))
	}
	return nil
}

// answer is the JSON of every webhook answer: the canary it is about, and why the answer
// is what it is. Flagger shows an error answer's body as it is, so it is one line.
type answer struct {
	Error   string          `json:"error,omitempty"`
	Field   string          `json:"field,omitempty"`
	Message string          `json:"message,omitempty"`
	Canary  string          `json:"canary,omitempty"`
	Key     string          `json:"key,omitempty"`
	Status  analysis.Status `json:"status,omitempty"`
	Score   *float64        `json:"score,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// answerError is an answer that is not a 2xx.
type answerError struct {
	code int
	a    answer
}

func badField(field, msg string) *answerError {
	return &answerError{code: http.StatusBadRequest, a: answer{Error: field + ": " + msg, Field: field}}
}

func write(w http.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // Flagger shows the body as text: "score 60 < 75", not \u003c
	_ = enc.Encode(a)        // the client went away; nothing to do
}

// handler decodes and checks the payload, then serves it.
func (h *Webhooks) handler(typ string, serve func(http.ResponseWriter, *http.Request, *payload)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ae := h.decode(w, r)
		if ae == nil {
			ae = p.check(typ)
		}
		if ae != nil {
			write(w, ae.code, ae.a)
			return
		}
		h.log.Debug("flagger webhook", zap.String("type", typ), zap.String("namespace", p.Namespace),
			zap.String("name", p.Name), zap.String("checksum", p.Checksum), zap.String("phase", p.Phase))
		serve(w, r, p)
	})
}

// decode reads Flagger's payload leniently: unknown fields are ignored, a field of the
// wrong type is a 400 naming it.
func (h *Webhooks) decode(w http.ResponseWriter, r *http.Request) (*payload, *answerError) {
	data, berr := jsonbody.Read(w, r, h.o.MaxBody)
	if berr != nil {
		return nil, &answerError{code: berr.Status, a: answer{Error: berr.Msg}}
	}
	var p payload
	if err := json.Unmarshal(data, &p); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			field := typeErr.Field
			if field == "metadata" {
				field += nonString(data)
			}
			return nil, badField(field, "must be "+kindOf(typeErr.Type.Kind().String())+", not a JSON "+typeErr.Value)
		}
		return nil, &answerError{code: http.StatusBadRequest, a: answer{Error: "the body must be Flagger's webhook payload, a JSON object: " + err.Error()}}
	}
	return &p, nil
}

// nonString is ".KEY" of the first metadata key (sorted) whose value is not a string.
func nonString(data []byte) string {
	var p struct {
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if json.Unmarshal(data, &p) != nil {
		return ""
	}
	for _, k := range slices.Sorted(maps.Keys(p.Metadata)) {
		if v := bytes.TrimSpace(p.Metadata[k]); len(v) == 0 || v[0] != '"' {
			return "." + k
		}
	}
	return ""
}

func kindOf(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	}
	return goKind
}

// find is the canary a rollout's key names, or nil when none is stored.
func (h *Webhooks) find(ctx context.Context, p *payload) (*analysis.Canary, error) {
	page, err := h.o.Canaries.ListPage(ctx, analysis.ListQuery{Key: p.key(), Limit: 1})
	if err != nil || len(page.Canaries) == 0 {
		return nil, err
	}
	return page.Canaries[0], nil
}

// canary is the canary a question is about; nil with the answer written when there is
// none.
func (h *Webhooks) canary(w http.ResponseWriter, r *http.Request, p *payload) *analysis.Canary {
	c, err := h.find(r.Context(), p)
	if err != nil {
		h.fail(w, r, err)
		return nil
	}
	if c == nil {
		write(w, http.StatusNotFound, answer{Key: p.key(), Error: fmt.Sprintf(
			"no canary registered for %s/%s at checksum %s: canaryd's pre-rollout webhook registers it", p.Namespace, p.Name, p.Checksum)})
	}
	return c
}

func about(c *analysis.Canary) answer {
	return answer{Canary: c.ID, Key: c.Key, Status: c.Status, Score: c.Score, Reason: c.Reason}
}

// yes answers 200; no answers 409 with the canary's state: a definite no, which Flagger
// does not retry within the call.
func yes(w http.ResponseWriter, c *analysis.Canary, msg string) {
	a := about(c)
	a.Message = msg
	write(w, http.StatusOK, a)
}

func no(w http.ResponseWriter, c *analysis.Canary, msg string) {
	a := about(c)
	a.Error = msg
	write(w, http.StatusConflict, a)
}

// state says where a canary is, for an answer's message.
func state(c *analysis.Canary) string {
	if c.Status == analysis.StatusRunning {
		return fmt.Sprintf("canary %s is running (interval %d of %d next, at %s)", c.ID, c.NextIndex, c.Intervals,
			c.IntervalEnd(c.NextIndex).UTC().Format(time.RFC3339))
	}
	s := fmt.Sprintf("canary %s ended %s", c.ID, c.Status)
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

// failed reports whether a canary ended in a way that rolls the rollout back.
func failed(s analysis.Status) bool {
	return s == analysis.StatusFail || s == analysis.StatusAborted || s == analysis.StatusError
}

func (h *Webhooks) preRollout(w http.ResponseWriter, r *http.Request, p *payload) {
	reg, ae := registration(p)
	if ae != nil {
		write(w, ae.code, ae.a)
		return
	}
	c, outcome, err := h.o.Canaries.RegisterByKey(r.Context(), reg)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	code, msg := http.StatusCreated, "registered: "+state(c)
	if outcome == analysis.Existing {
		code, msg = http.StatusOK, "already registered: "+state(c)
	}
	a := about(c)
	a.Message = msg
	write(w, code, a)
}

func (h *Webhooks) rollout(w http.ResponseWriter, r *http.Request, p *payload) {
	c := h.canary(w, r, p)
	switch {
	case c == nil:
	case c.Status == analysis.StatusRunning || c.Status == analysis.StatusPass:
		yes(w, c, state(c))
	default:
		no(w, c, state(c))
	}
}

// confirmRollout gates the start of a rollout, before pre-rollout and before Flagger has
// the revision's checksum: canaryd has nothing to judge yet, so it checks the call only.
func (h *Webhooks) confirmRollout(w http.ResponseWriter, _ *http.Request, p *payload) {
	write(w, http.StatusOK, answer{Message: fmt.Sprintf("%s/%s may start: canaryd judges it once pre-rollout registers it", p.Namespace, p.Name)})
}

func (h *Webhooks) confirmPromotion(w http.ResponseWriter, r *http.Request, p *payload) {
	c := h.canary(w, r, p)
	switch {
	case c == nil:
	case c.Status == analysis.StatusPass:
		yes(w, c, state(c))
	default:
		no(w, c, "not promoted: "+state(c))
	}
}

func (h *Webhooks) rollback(w http.ResponseWriter, r *http.Request, p *payload) {
	c := h.canary(w, r, p)
	switch {
	case c == nil:
	case failed(c.Status):
		yes(w, c, "roll back: "+state(c))
	default:
		no(w, c, "no rollback: "+state(c))
	}
}

// postRollout records how Flagger ended the rollout. A canary still running is ended as
// Flagger ended it: promoted (its pass actuators fire), or aborted without actuating,
// since Flagger has rolled back already. An ended canary keeps its verdict; the audit log
// records Flagger's outcome beside it.
func (h *Webhooks) postRollout(w http.ResponseWriter, r *http.Request, p *payload) {
	if p.Phase != "Succeeded" && p.Phase != "Failed" {
		write(w, http.StatusBadRequest, answer{Field: "phase", Error: "phase: " + quote(p.Phase) + " is not how a rollout ends (Succeeded or Failed)"})
		return
	}
	c := h.canary(w, r, p)
	if c == nil {
		return
	}
	ctx := r.Context()
	var err error
	if c.Status == analysis.StatusRunning {
		var ended *analysis.Canary
		if p.Phase == "Succeeded" {
			ended, err = h.o.Canaries.Promote(ctx, c.ID, "Flagger promoted the rollout (post-rollout, phase Succeeded) before canaryd's verdict")
		} else {
			ended, err = h.o.Canaries.Abort(ctx, c.ID, "Flagger rolled the rollout back (post-rollout, phase Failed)", false)
		}
		if err == nil {
			yes(w, ended, "recorded: "+state(ended))
			return
		}
		if !errors.Is(err, analysis.ErrFinished) {
			h.fail(w, r, err)
			return
		}
		// It ended meanwhile: record Flagger's outcome beside its verdict.
		if c, err = h.find(ctx, p); err == nil && c == nil {
			err = analysis.ErrNotFound
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if h.o.Events != nil {
		err = h.o.Events.RecordEvent(ctx, guard.Event{Canary: c.ID, CanaryName: c.Name, Analysis: c.Analysis, Outcome: p.Phase,
			Reason: fmt.Sprintf("Flagger ended the rollout %s (post-rollout); canaryd's verdict: %s", p.Phase, c.Status)})
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	yes(w, c, "recorded: Flagger ended it "+p.Phase+"; "+state(c))
}

// event writes Flagger's event to the audit log, with the canary its checksum names when
// canaryd holds one.
func (h *Webhooks) event(w http.ResponseWriter, r *http.Request, p *payload) {
	if h.o.Events == nil {
		write(w, http.StatusNotFound, answer{Error: "the audit log is not enabled"})
		return
	}
	ev := guard.Event{CanaryName: p.Namespace + "/" + p.Name, Outcome: clean(p.Metadata["eventType"], 64),
		Reason: clean("Flagger ("+p.Phase+"): "+p.Metadata["eventMessage"], analysis.MaxReasonLen)}
	if ev.Outcome == "" {
		ev.Outcome = "event"
	}
	var a answer
	if p.Checksum != "" {
		c, err := h.find(r.Context(), p)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if c != nil {
			ev.Canary, ev.Analysis, a = c.ID, c.Analysis, about(c)
		}
	}
	if err := h.o.Events.RecordEvent(r.Context(), ev); err != nil {
		h.fail(w, r, err)
		return
	}
	a.Message = "recorded in the audit log"
	write(w, http.StatusOK, a)
}

// fail maps the scheduler's errors to answers. Flagger retries a 5xx within the call,
// which is right for a store that cannot write and wrong for bad input.
func (h *Webhooks) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ie *analysis.InputError
		ke *analysis.KeyConflictError
	)
	switch {
	case errors.As(err, &ie):
		field := metadataField(ie.Field)
		write(w, http.StatusBadRequest, answer{Field: field, Error: field + ": " + ie.Msg})
	case errors.As(err, &ke):
		write(w, http.StatusConflict, answer{Canary: ke.ID, Key: ke.Key, Field: metadataField(ke.Field), Error: ke.Error()})
	case errors.As(err, new(*analysis.LimitError)):
		write(w, http.StatusTooManyRequests, answer{Error: err.Error()})
	case errors.Is(err, analysis.ErrNotFound):
		write(w, http.StatusNotFound, answer{Error: "canary not found (deleted meanwhile?)"})
	case errors.Is(err, context.Canceled):
		// Flagger went away.
	default:
		h.log.Error("flagger webhook failed", zap.String("path", r.URL.Path), zap.Error(err))
		write(w, http.StatusInternalServerError, answer{Error: "internal error; see canaryd's log"})
	}
}

// metadataField names a registration's field as the webhook's metadata gives it.
func metadataField(f string) string {
	switch {
	case f == "" || f == "name":
		return f
	case f == "key":
		return "name"
	}
	return "metadata." + f
}

// registration is the canary a pre-rollout asks for: the analysis, durations and
// variables from the metadata, the cohorts Flagger runs (its primary as the baseline).
func registration(p *payload) (analysis.Registration, *answerError) {
	md := p.Metadata
	reg := analysis.Registration{
		Name: p.Namespace + "/" + p.Name, Analysis: md["analysis"], Key: p.key(),
		Baseline: map[string]string{}, Canary: map[string]string{}, Vars: map[string]string{},
	}
	if reg.Analysis == "" {
		return reg, badField("metadata.analysis", "required: the canaryd analysis that judges this canary")
	}
	target := p.Name
	if t, ok := md["target"]; ok {
		if t == "" || len(t) > 253 || !nameRe.MatchString(t) {
			return reg, badField("metadata.target", "must be a Kubernetes object name (the canary's targetRef)")
		}
		target = t
	}
	reg.Baseline[CohortVar], reg.Canary[CohortVar] = target+"-primary", target
	reg.Vars["namespace"], reg.Vars["target"] = p.Namespace, target
	for k, v := range md {
		for prefix, m := range map[string]map[string]string{"baseline.": reg.Baseline, "canary.": reg.Canary, "vars.": reg.Vars} {
			if name, ok := strings.CutPrefix(k, prefix); ok {
				m[name] = v
			}
		}
	}
	var err *answerError
	if reg.Lifetime, err = duration(md, "lifetime"); err != nil {
		return reg, err
	}
	if reg.Interval, err = duration(md, "interval"); err != nil {
		return reg, err
	}
	if v, ok := md["dry_run"]; ok {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return reg, badField("metadata.dry_run", quote(v)+" is not true or false")
		}
		reg.DryRun = b
	}
	return reg, nil
}

// CohortVar is the cohort variable the webhooks fill with the workloads Flagger runs:
// {target}-primary for the baseline, {target} for the canary.
const CohortVar = "workload"

func duration(md map[string]string, key string) (time.Duration, *answerError) {
	v, ok := md[key]
	if !ok {
		return 0, nil
	}
	d, err := model.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, badField("metadata."+key, quote(v)+" is not a duration > 0 (e.g. 30s, 10m, 1h)")
	}
	return time.Duration(d), nil
}

// quote is a hostile value as an answer may show it: quoted, escaped, at most 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "…"
	}
	return strconv.Quote(s)
}

// clean is a tool's text as the audit log keeps it: valid UTF-8, control characters and
// line separators as spaces, at most max bytes.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.TrimSpace(s)
}
