package actuators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// A preflight is a kind's check, run when a canary is registered, that the actuator
// could act on it (the previous image exists, the credentials work, the flag is there)
// and that changes nothing. A kind offers one with a method
//
//	Preflight(ctx context.Context, e Event) (Result, error)
//
// that answers ErrNoPreflight when its entry configures none. The safety layer bounds
// ctx by the actuator's preflight_timeout (at most MaxPreflightTimeout) and by the
// registration's request.
const (
	// DefaultPreflightTimeout bounds one preflight when the entry does not say.
	DefaultPreflightTimeout = 10 * time.Second
	// MaxPreflightTimeout caps preflight_timeout: a registration waits for its checks,
	// and a pipeline's HTTP client gives up after a minute or so.
	MaxPreflightTimeout = 30 * time.Second
)

// ActionPreflight is Event.Action when the event is a preflight's.
const ActionPreflight = "preflight"

// ErrNoPreflight is a kind's answer when its entry configures no preflight.
var ErrNoPreflight = errors.New("no preflight configured")

// PreflightRenderError is a preflight that could not be built for the canary (a
// variable its template needs is missing, a value it refuses): the registration's
// mistake, reported as such, not a failed check.
type PreflightRenderError struct{ Err error }

func (e *PreflightRenderError) Error() string { return e.Err.Error() }
func (e *PreflightRenderError) Unwrap() error { return e.Err }

// PreflightRender marks err (nil stays nil) as a PreflightRenderError.
func PreflightRender(err error) error {
	if err == nil {
		return nil
	}
	return &PreflightRenderError{Err: err}
}

// PreflightEvent is e made into a preflight's event: its Action and its key
// ("<canary id>/preflight/<actuator>").
func PreflightEvent(e Event) Event {
	e.Action = ActionPreflight
	e.Key = e.ID + "/" + ActionPreflight + "/" + e.Actuator
	return e
}

// SendPreflight makes a check's request (GET or HEAD, no body) and reports a 2xx as
// success; any other answer, or none, is the check's failure, with its status and body.
func SendPreflight(ctx context.Context, client *http.Client, method, url, key string, header map[string]string, limit int) (Result, error) {
	req, err := NewRequest(ctx, method, url, nil, key, header)
	if err != nil {
		return Result{}, err
	}
	res, err := Send(ctx, client, req, limit)
	res.Target = method + " " + redactedURL(req)
	if err != nil {
		// A preflight is never retried: the registration is waiting.
		return res, &Error{Result: res, Err: err}
	}
	return res, nil
}

// JSONField reads the value at pointer (RFC 6901, "/environments/production/on") in
// body, for a check that looks at the answer.
func JSONField(body, pointer string) (json.RawMessage, error) {
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("the answer is not JSON: %w", err)
	}
	if pointer == "" {
		return json.RawMessage(body), nil
	}
	if !strings.HasPrefix(pointer, "/") {
		return nil, fmt.Errorf("%q is not a JSON pointer (it starts with /)", pointer)
	}
	for _, tok := range strings.Split(pointer[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[tok]
			if !ok {
				return nil, fmt.Errorf("the answer has no %s", pointer)
			}
			v = next
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(x) || fmt.Sprint(i) != tok {
				return nil, fmt.Errorf("the answer has no %s", pointer)
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("the answer has no %s", pointer)
		}
	}
	b, err := json.Marshal(v)
	return b, err
}

// EscapePointerToken escapes a value for one token of a JSON pointer: "~" as "~0" and
// "/" as "~1", so a value cannot reach another key.
func EscapePointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
