package actuators

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Actuator is one configured actuator: a kind built from its config. Act does the thing
// once; the guard decides whether, when and how often.
type Actuator interface {
	// Render returns the request Act would make for e, with secrets replaced by
	// "<secret>": what the audit log and dry runs show. It makes no I/O.
	Render(e Event) (Request, error)
	// Act makes the request for e. A failure worth retrying is reported with Retryable
	// (or an *Error whose Retry is set); any other error is final.
	Act(ctx context.Context, e Event) (Result, error)
}

// Resolvable is an Actuator whose trigger opens something (an incident) that should be
// closed when a later canary of the same service passes: the guard then calls Act with
// an Event whose Action is ActionResolve and whose DedupKey names what was opened.
type Resolvable interface {
	Actuator
	Resolvable()
}

// Event actions.
const (
	ActionTrigger = "trigger"
	ActionResolve = "resolve"
)

// Event is what an actuator acts on and what its templates see: the canary, its verdict,
// why it ended and the metrics that failed. It is snapshotted when the action is planned,
// so every attempt (and a retry after a restart) sends the same content.
type Event struct {
	// Key is the idempotency key, the same for every attempt of one action:
	// "<canary id>/<trigger>/<actuator>". Receivers should drop a key they have seen.
	Key string `json:"idempotency_key"`
	// Action is ActionTrigger, or ActionResolve for the close of what DedupKey opened.
	Action string `json:"action"`
	// DedupKey identifies what the action opens or closes: the id of the failing canary.
	DedupKey string `json:"dedup_key"`
	// Actuator is the actuator's name in the config.
	Actuator string `json:"actuator"`

	ID       string   `json:"canary_id"`
	Name     string   `json:"name"`
	Analysis string   `json:"analysis"`
	Status   string   `json:"status"`
	Verdict  string   `json:"verdict,omitempty"`
	Score    *float64 `json:"score,omitempty"`
	Reason   string   `json:"reason"`
	// Kind is what ended the canary: verdict (the scheduler), abort or promote (a human);
	// start for on_start.
	Kind string `json:"kind"`
	// Trigger is the analysis list that fired: on_start, on_fail, on_pass, on_marginal,
	// on_error.
	Trigger string `json:"trigger"`
	// Cause is why the canary ended: lifetime, critical, errors, nodata, api; empty for
	// on_start.
	Cause string `json:"cause"`
	// Service groups canaries of one service for the breaker, cooldown and resolve.
	Service string `json:"service"`
	// Baseline and Canary are the cohorts' variables, Vars the shared ones, as registered.
	Baseline map[string]string `json:"baseline"`
	Canary   map[string]string `json:"canary"`
	Vars     map[string]string `json:"vars"`
	// Failing are the last interval's failed or errored metrics, critical ones first.
	Failing []FailingMetric `json:"failing,omitempty"`
	Link    string          `json:"link,omitempty"`
	// Time is when the verdict was reached (for on_start, when the canary was registered).
	Time time.Time `json:"time"`
	// Start is when the canary began taking traffic (its registration's start): with
	// Time, the span a dashboard annotation covers. Zero in actions planned before it
	// was recorded.
	Start  time.Time `json:"start"`
	DryRun bool      `json:"dry_run,omitempty"`
	// Recovery is the recovery watch's outcome, on on_not_recovered actions (empty on
	// the others): {{ .Recovery.Reason }}.
	Recovery RecoveryEvent `json:"recovery,omitzero"`
}

// RecoveryEvent is what an escalation says about the recovery watch: its outcome, why
// (the metric and its figures, or the failed rollback), and each failed rollback's error.
type RecoveryEvent struct {
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// RolledBackAt is when the fail actions ended; DecidedAt when the outcome was reached.
	RolledBackAt *time.Time `json:"rolled_back_at,omitempty"`
	DecidedAt    *time.Time `json:"decided_at,omitempty"`
	// RollbackErrors are the errors of the rollback actions that failed
	// ("rollback: exit status 1: …").
	RollbackErrors []string `json:"rollback_errors,omitempty"`
}

// ScoreText is the score with one decimal, or "n/a" before the first judged interval:
// {{ .ScoreText }} in templates.
func (e Event) ScoreText() string {
	if e.Score == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", *e.Score)
}

// FailingMetric is one metric that counted against the canary.
type FailingMetric struct {
	Name           string `json:"name"`
	Group          string `json:"group,omitempty"`
	Classification string `json:"classification"`
	Critical       bool   `json:"critical,omitempty"`
	Reason         string `json:"reason"`
}

// Request is an action as the audit log shows it: secrets are "<secret>".
type Request struct {
	// Target is the action on one line: "POST https://…" or the argv joined by spaces.
	Target string            `json:"target"`
	Method string            `json:"method,omitempty"`
	URL    string            `json:"url,omitempty"`
	Header map[string]string `json:"header,omitempty"`
	Body   string            `json:"body,omitempty"`
	Argv   []string          `json:"argv,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
}

// Result is what an attempt got back.
type Result struct {
	// Status is the HTTP status, or the exit code for exec.
	Status int `json:"status"`
	// Output is the response body or the command's combined output, cut to a bound.
	Output string `json:"output,omitempty"`
	// Target is what a preflight checked, on one line (its argv, or "GET https://…"
	// with secrets redacted); actions leave it empty, their Request says it.
	Target string `json:"target,omitempty"`
}

// Error is a failed attempt with what was learnt from it.
type Error struct {
	// Retry says whether trying again may succeed (5xx, 429, network error).
	Retry bool
	// RetryAfter is the receiver's own hint (Retry-After), zero when it gave none.
	RetryAfter time.Duration
	Result     Result
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Retryable marks err as worth retrying.
func Retryable(err error) error { return &Error{Retry: true, Err: err} }

// IsRetryable reports whether err is worth retrying. Errors not marked are final: a kind
// must say so for a retry to happen, so nothing is repeated by accident.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retry
}

// ResultOf returns the Result carried by err, if any.
func ResultOf(err error) Result {
	var e *Error
	if errors.As(err, &e) {
		return e.Result
	}
	return Result{}
}

// RetryAfterOf returns the receiver's retry hint carried by err, if any.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Truncate cuts s to at most n bytes on a rune boundary, saying how much was cut.
func Truncate(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…[%d bytes cut]", len(s)-cut)
}

// Secret is what a secret shows as in requests the audit log keeps.
const Secret = "<secret>"

// Options are what every kind's constructor takes besides its own config.
type Options struct {
	// Name is the actuator's name in the config, for logs and HTTP client names.
	Name string
	// OutputLimit bounds the response body or command output kept (DefaultOutputLimit).
	OutputLimit int
	// StateDir is a directory the kind may keep per-action files in across restarts
	// (exec: completion markers and the pid of the running command); none when empty.
	StateDir string
}

// Completion is an Actuator that can tell, after a restart, that an attempt cut short
// by the crash did its work (exec's completion marker). The guard asks it before
// abandoning an interrupted attempt, and calls Forget once the outcome is recorded.
type Completion interface {
	Actuator
	Completed(e Event) bool
	Forget(e Event)
}

// Lookup is an Actuator whose receiver ignores the idempotency key but can be asked
// whether an earlier attempt of an action took effect (Grafana: an annotation is found
// by its time, text and tags). Before every attempt after the first (a retry, or the
// attempt after one a restart cut short, whose answer was lost), the guard asks it:
// an action found applied is recorded as succeeded and not sent again. Applied's
// Result says what it found; an error (the receiver cannot be asked) lets the attempt
// go ahead, at least once, as without a lookup.
type Lookup interface {
	Actuator
	Applied(ctx context.Context, e Event) (Result, bool, error)
}

// Limit is o.OutputLimit or the default.
func (o Options) Limit() int {
	if o.OutputLimit <= 0 {
		return DefaultOutputLimit
	}
	return o.OutputLimit
}
