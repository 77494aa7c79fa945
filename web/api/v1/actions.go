package v1

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canaryd/canaryd/actuators/guard"
	"github.com/canaryd/canaryd/analysis"
)

// Actuations is the actuators' safety layer as the API uses it; *guard.Guard implements
// it. Without it the approve, reject, actuations and audit endpoints answer 404.
type Actuations interface {
	Approve(ctx context.Context, canaryID string, actuators []string, reason string) ([]*guard.Actuation, error)
	Reject(ctx context.Context, canaryID string, actuators []string, reason string) ([]*guard.Actuation, error)
	Actuations(ctx context.Context, canaryID string) ([]*guard.Actuation, error)
	Audit(ctx context.Context, q guard.Query) ([]guard.Entry, error)
}

func (s *server) actuationsEnabled(w http.ResponseWriter) bool {
	if s.o.Actuations == nil {
		writeError(w, http.StatusNotFound, "", "the actuators layer is not enabled")
		return false
	}
	return true
}

// decideRequest is the optional body of approve and reject.
type decideRequest struct {
	Reason string `json:"reason"`
	// Actuators limits the decision to these actuators' actions (all when empty).
	Actuators []string `json:"actuators"`
}

type actuationsView struct {
	CanaryID   string             `json:"canary_id"`
	Actuations []*guard.Actuation `json:"actuations"`
}

func (s *server) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	if !s.actuationsEnabled(w) {
		return
	}
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "", "approve and reject take no query parameters")
		return
	}
	var req decideRequest
	if !s.decode(w, r, &req, true) {
		return
	}
	for i, a := range req.Actuators {
		if a == "" || len(a) > 128 || analysis.CheckText("", a) != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("actuators[%d]", i), "must be an actuator name")
			return
		}
	}
	if len(req.Reason) > analysis.MaxReasonLen {
		writeError(w, http.StatusBadRequest, "reason", fmt.Sprintf("longer than %d bytes", analysis.MaxReasonLen))
		return
	}
	if err := analysis.CheckText("reason", req.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	decide := s.o.Actuations.Reject
	if approve {
		decide = s.o.Actuations.Approve
	}
	acts, err := decide(r.Context(), id, req.Actuators, req.Reason)
	switch {
	case errors.Is(err, guard.ErrNothingAwaiting), errors.Is(err, guard.ErrExpired):
		writeError(w, http.StatusConflict, "", err.Error())
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, actuationsView{CanaryID: id, Actuations: nonNilActs(acts)})
}

func nonNilActs(a []*guard.Actuation) []*guard.Actuation {
	if a == nil {
		return []*guard.Actuation{}
	}
	return a
}

func (s *server) actuations(w http.ResponseWriter, r *http.Request) {
	if !s.actuationsEnabled(w) {
		return
	}
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	if _, err := s.o.Reader.Summary(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	acts, err := s.o.Actuations.Actuations(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, actuationsView{CanaryID: id, Actuations: nonNilActs(acts)})
}

// Audit query limits.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

var auditParams = []string{"canary", "service", "actuator", "kind", "type", "outcome", "since", "until", "before", "limit"}

type auditView struct {
	Entries []guard.Entry `json:"entries"`
	// NextBefore pages on: pass it as ?before= for the older entries (absent at the end).
	NextBefore uint64 `json:"next_before,omitempty"`
}

// parseTimeParam reads an RFC 3339 time, or a duration meaning that long ago (1h, 7d).
func parseTimeParam(field, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := model.ParseDuration(v); err == nil {
		return now.Add(-time.Duration(d)), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, &analysis.InputError{Field: field, Msg: fmt.Sprintf("%q is neither an RFC 3339 time nor a duration ago (e.g. 2026-03-01T12:00:00Z, 1h, 7d)", v)}
}

func (s *server) audit(w http.ResponseWriter, r *http.Request) {
	if !s.actuationsEnabled(w) {
		return
	}
	q := guard.Query{Limit: defaultAuditLimit}
	now := s.o.Clock.Now()
	for k, vs := range r.URL.Query() {
		if !slices.Contains(auditParams, k) {
			writeError(w, http.StatusBadRequest, k, fmt.Sprintf("unknown query parameter; the filters are %v", auditParams))
			return
		}
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "canary":
			q.Canary = v
		case "service":
			q.Service = v
		case "actuator":
			q.Actuator = v
		case "kind":
			q.Kind = guard.EntryKind(v)
		case "type":
			q.Type = v
		case "outcome":
			q.Outcome = v
		case "since":
			q.Since, err = parseTimeParam(k, v, now)
		case "until":
			q.Until, err = parseTimeParam(k, v, now)
		case "before":
			q.Before, err = strconv.ParseUint(v, 10, 64)
			if err != nil || q.Before == 0 {
				err = &analysis.InputError{Field: k, Msg: "must be a sequence number > 0 (next_before of the previous page)"}
			}
		case "limit":
			q.Limit, err = strconv.Atoi(v)
			if err != nil || q.Limit < 1 || q.Limit > maxAuditLimit {
				err = &analysis.InputError{Field: k, Msg: fmt.Sprintf("must be an integer in [1, %d]", maxAuditLimit)}
			}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		writeError(w, http.StatusBadRequest, "until", "must be after since")
		return
	}
	es, err := s.o.Actuations.Audit(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := auditView{Entries: es}
	if len(es) == q.Limit && es[len(es)-1].Seq > 1 {
		out.NextBefore = es[len(es)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}
