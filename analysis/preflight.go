package analysis

import (
	"context"
	"fmt"
	"strings"

	"github.com/canaryd/canaryd/config"
)

// PreflightResult is one actuator's preflight check, as run when its canary was
// registered.
type PreflightResult struct {
	Actuator string `json:"actuator"`
	// Type is the actuator's kind (exec, flag, …).
	Type string `json:"type"`
	// OK says whether the check passed.
	OK bool `json:"ok"`
	// Target is what was checked on one line: the argv, or "GET https://…" (secrets
	// redacted).
	Target string `json:"target,omitempty"`
	// Status is the exit code or the HTTP status (0 when there was none).
	Status int `json:"status,omitempty"`
	// Output is the command's output or the answer's body, cut to actuation.output_limit.
	Output string `json:"output,omitempty"`
	// Error says why the check failed.
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Warning is the failed check in a sentence, "" when it passed.
func (r PreflightResult) Warning() string {
	if r.OK {
		return ""
	}
	s := fmt.Sprintf("preflight of actuator %s (%s) failed: %s", r.Actuator, r.Type, r.Error)
	if out := strings.TrimSpace(r.Output); out != "" {
		s += "; output: " + out
	}
	return s
}

// PreflightWarnings are the sentences of the failed checks.
func PreflightWarnings(rs []PreflightResult) []string {
	var ws []string
	for _, r := range rs {
		if w := r.Warning(); w != "" {
			ws = append(ws, w)
		}
	}
	return ws
}

// PreflightError is a registration refused by a failed preflight (the analysis'
// preflight: refuse): nothing was stored. The API answers 409.
type PreflightError struct {
	Analysis string
	Results  []PreflightResult
}

func (e *PreflightError) Error() string {
	return fmt.Sprintf("analysis %s refuses the canary (preflight: refuse): %s", e.Analysis, strings.Join(PreflightWarnings(e.Results), "; "))
}

// PreflightCheck runs the actuators' preflight checks for c (its id set, not yet
// stored) of analysis a, bounded by ctx (the registration's request), and returns every
// result. It returns a *PreflightError when a check failed and a refuses, an
// *InputError when a check cannot be built for the canary (a missing variable); its
// results are stored on the canary otherwise.
type PreflightCheck func(ctx context.Context, a *config.Analysis, c *Canary) ([]PreflightResult, error)
