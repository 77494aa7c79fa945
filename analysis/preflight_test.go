package analysis_test

import (
	"context"
	"errors"
	"testing"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/config"
)

// The preflight runs last, with the canary's id, under the request's context: a refusal
// stores nothing and frees the analysis' running slot; a warning is stored with the
// canary and survives a restart; a registration refused before never runs it.
func TestPreflightCheck(t *testing.T) {
	h := newHarness(t)
	h.stop()
	type ctxKey struct{}
	var seen []*analysis.Canary
	refuse := true
	h.preflight = func(ctx context.Context, a *config.Analysis, c *analysis.Canary) ([]analysis.PreflightResult, error) {
		if ctx.Value(ctxKey{}) != "request" {
			t.Error("the preflight does not run under the request's context")
		}
		seen = append(seen, c)
		rs := []analysis.PreflightResult{
			{Actuator: "undo", Type: "exec", OK: false, Target: "kubectl rollout history deployment/web", Status: 1, Output: "no previous revision\n", Error: "kubectl: exit status 1"},
			{Actuator: "notify", Type: "webhook", OK: true, Status: 204},
		}
		if refuse {
			return rs, &analysis.PreflightError{Analysis: a.Name, Results: rs}
		}
		return rs, nil
	}
	h.cfg.Server.MaxRunningPerAnalysis = 1
	h.start()
	ctx := context.WithValue(context.Background(), ctxKey{}, "request")
	r := analysis.Registration{
		Name: "web", Analysis: "basic", Vars: map[string]string{"app": "web"},
		Baseline: map[string]string{"track": "baseline", "signal": "ok"},
		Canary:   map[string]string{"track": "canary", "signal": "ok"},
	}
	bad := r
	bad.Canary = r.Baseline
	if _, err := h.sched.Register(ctx, bad); err == nil || len(seen) != 0 {
		t.Fatalf("an invalid registration: %v, preflight ran %d times", err, len(seen))
	}
	_, err := h.sched.Register(ctx, r)
	var pe *analysis.PreflightError
	if !errors.As(err, &pe) || len(pe.Results) != 2 {
		t.Fatalf("want the PreflightError, got %v", err)
	}
	if want := "analysis basic refuses the canary (preflight: refuse): preflight of actuator undo (exec) failed: kubectl: exit status 1; output: no previous revision"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if all, _ := h.sched.List(ctx, ""); len(all) != 0 {
		t.Errorf("a refused registration stored %d canaries", len(all))
	}
	refuse = false
	c, err := h.sched.Register(ctx, r) // the refusal freed the only slot
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[1].ID == "" || seen[1].ID != c.ID || seen[0].ID == seen[1].ID {
		t.Errorf("the preflight saw ids %q, %q; stored %q", seen[0].ID, seen[1].ID, c.ID)
	}
	// A repeat with the key of a stored canary is answered from the store: its checks
	// are not run again.
	if _, err := h.sched.Abort(ctx, c.ID, "", false); err != nil {
		t.Fatal(err)
	}
	keyed := r
	keyed.Key = "web-v2-build-7"
	first, err := h.sched.Register(ctx, keyed)
	if err != nil {
		t.Fatal(err)
	}
	n := len(seen)
	again, err := h.sched.Register(ctx, keyed)
	if err != nil || again.ID != first.ID || len(seen) != n {
		t.Errorf("repeat: %v, id %s (first %s), preflight ran %d more times", err, again.ID, first.ID, len(seen)-n)
	}
	h.stop()
	h.start()
	d, err := h.sched.Summary(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := analysis.PreflightWarnings(d.Canary.Preflight)
	if len(d.Canary.Preflight) != 2 || len(got) != 1 || got[0] != "preflight of actuator undo (exec) failed: kubectl: exit status 1; output: no previous revision" {
		t.Errorf("stored %+v, warnings %q", d.Canary.Preflight, got)
	}
}
