package guard

import (
	"time"

	"github.com/canaryd/canaryd/actuators"
	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/internal/identity"
)

// State is where an action is. Pending and firing are the unfinished states that Recover
// picks up after a restart; awaiting_approval waits for a human; the others are final.
type State string

const (
	StateAwaitingApproval State = "awaiting_approval"
	StatePending          State = "pending"
	StateFiring           State = "firing"
	StateSucceeded        State = "succeeded"
	StateFailed           State = "failed"
	// StateRefused: the circuit breaker's limit for this actuator and service was hit.
	StateRefused State = "refused"
	// StateSuppressed: the service is in its cooldown after another canary's action.
	StateSuppressed State = "suppressed"
	// StateDryRun: recorded with its rendered request as "would have fired".
	StateDryRun State = "dry_run"
	// StateSkipped: the canary ended with ?actuate=false.
	StateSkipped  State = "skipped"
	StateRejected State = "rejected"
	StateExpired  State = "expired"
	// StateAbandoned: interrupted mid-attempt by a crash, and the actuator says
	// `resume: skip`; the outcome is unknown and a human must check.
	StateAbandoned State = "abandoned"
)

// Final reports whether nothing more will happen to an action in this state.
func (s State) Final() bool {
	switch s {
	case StateAwaitingApproval, StatePending, StateFiring:
		return false
	}
	return true
}

// Triggers: the analysis' actuator lists (actuators.Event.Trigger). Why the canary ended
// is its analysis.Cause (actuators.Event.Cause).
const (
	// TriggerStart fires when a canary is registered (after it is stored): its own
	// planned marker (startMarker), apart from the canary's end.
	TriggerStart    = config.HookStart
	TriggerFail     = config.HookFail
	TriggerPass     = config.HookPass
	TriggerMarginal = config.HookMarginal
	TriggerError    = config.HookError
	// TriggerNotRecovered fires when a failed canary's recovery watch ends not_recovered.
	TriggerNotRecovered = config.HookNotRecovered
	// triggerResolve prefixes the trigger of a resolve: "resolve:<failed canary id>".
	triggerResolve = "resolve:"
)

// Actuation is one action: one actuator fired (or not) for one canary and trigger. Its
// Key is the idempotency key every attempt carries.
type Actuation struct {
	Key        string `json:"key"`
	CanaryID   string `json:"canary_id"`
	CanaryName string `json:"canary_name"`
	Analysis   string `json:"analysis"`
	Service    string `json:"service"`
	Trigger    string `json:"trigger"`
	Actuator   string `json:"actuator"`
	Type       string `json:"type"`
	State      State  `json:"state"`
	// Attempts counts the attempts started; MaxAttempts is the actuator's limit.
	Attempts    int                `json:"attempts"`
	MaxAttempts int                `json:"max_attempts"`
	Request     *actuators.Request `json:"request,omitempty"`
	Status      int                `json:"status,omitempty"`
	Output      string             `json:"output,omitempty"`
	Error       string             `json:"error,omitempty"`
	// VerdictAt is when the canary ended; verdict-to-action time is measured from it.
	VerdictAt     time.Time  `json:"verdict_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	DoneAt        *time.Time `json:"done_at,omitempty"`
	// Event is what every attempt sends: snapshotted when the action was planned.
	Event actuators.Event `json:"event"`
	// Owner is the replica that planned, approved or claimed it last (Options.Replica;
	// empty with one process): while that replica is alive, no other resumes it.
	Owner string `json:"owner,omitempty"`
}

// EntryKind is what an audit entry records: a canary's end (its analysis.ActionKind:
// verdict, abort, promote, or stale when it ended too long ago to act on) or a step of the
// safety layer.
type EntryKind string

const (
	KindAction  EntryKind = "action"  // an actuator step
	KindApprove EntryKind = "approve" // a human released held actions
	KindReject  EntryKind = "reject"  // a human dropped held actions
	KindReload  EntryKind = "reload"  // a config reload, installed or refused
	KindRecover EntryKind = "recover" // what a restart found and did
	KindEvent   EntryKind = "event"   // what a deploy tool reported (Flagger's event webhook)
	KindStart   EntryKind = "start"   // a canary was registered: its on_start actions are planned
	// KindRecovery is a failed canary's recovery watch outcome (recovered,
	// not_recovered, unknown).
	KindRecovery EntryKind = "recovery"
	// KindPreflight is one actuator's preflight check when a canary was registered.
	KindPreflight EntryKind = "preflight"
)

// ActionStart is the kind of the action a canary's start is planned with (its Event's
// Kind): the scheduler records no such action; the guard makes it (startAction).
const ActionStart analysis.ActionKind = "start"

// kindOf is the entry kind of a canary's end (or start).
func kindOf(k analysis.ActionKind) EntryKind { return EntryKind(k) }

// Entry is one line of the audit log.
type Entry struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Kind is what happened: verdict, abort, promote (a canary ended), action (an
	// actuator step), approve, reject, reload, recover.
	Kind EntryKind `json:"kind"`
	// Who did it: "scheduler", "canaryd", or the API client's identity.
	Who    string `json:"who"`
	Remote string `json:"remote,omitempty"`

	Canary     string `json:"canary,omitempty"`
	CanaryName string `json:"canary_name,omitempty"`
	Analysis   string `json:"analysis,omitempty"`
	Service    string `json:"service,omitempty"`
	Actuator   string `json:"actuator,omitempty"`
	// Type is the actuator's kind (webhook, exec, …).
	Type    string `json:"type,omitempty"`
	Trigger string `json:"trigger,omitempty"`
	Key     string `json:"key,omitempty"`
	// Outcome is the action's state after this step (or ok / error for the others).
	Outcome string             `json:"outcome"`
	Attempt int                `json:"attempt,omitempty"`
	Request *actuators.Request `json:"request,omitempty"`
	Status  int                `json:"status,omitempty"`
	Output  string             `json:"output,omitempty"`
	Error   string             `json:"error,omitempty"`
	Reason  string             `json:"reason,omitempty"`
	// Seconds is how long the attempt took.
	Seconds float64 `json:"seconds,omitempty"`
}

// Actor is who asked for something, as the audit log records it: the request's
// identity, set by the HTTP surface's auth middleware (identity.With), as it is.
type Actor = identity.Actor
