package analysis

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
)

// ErrFinished is returned when aborting or promoting a canary that has already ended.
var ErrFinished = errors.New("canary has already ended")

// InputError is a registration field that is wrong, and why.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// LimitError is a registration refused because a cap is reached; the request was valid
// and may succeed later.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return e.Msg }

func inputErr(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Registration is a request to analyse a canary.
type Registration struct {
	Name     string
	Analysis string
	Baseline map[string]string
	Canary   map[string]string
	Vars     map[string]string
	// Lifetime and Interval override the analysis' when not zero.
	Lifetime time.Duration
	Interval time.Duration
	// Start is when the canary started taking traffic; zero means now (the API refuses
	// an explicit zero time).
	Start time.Time
	// End, when not zero, makes the registration a one-shot judgement of the window from
	// Start to End (a Kayenta execution): one interval over the whole window, no warmup
	// (the caller chose the window), judged at End, so at once when End is past. It needs
	// Start, and Lifetime and Interval must be zero.
	End time.Time
	// Thresholds, when not nil, replace the analysis' score.pass and score.marginal for
	// this canary (a Kayenta execution's thresholds), so that its verdict is the one the
	// caller reads off the score.
	Thresholds *Thresholds
	DryRun     bool
	// Key is the caller's identity for this registration ("" for none): a repeat with
	// the same key returns the canary it registered (see Scheduler.RegisterByKey).
	Key string
}

// Limits of a registration, so that one request cannot bloat the store or a query.
const (
	maxNameLen     = 200
	maxVars        = 64
	maxValueLen    = 512
	maxIntervals   = 10000
	maxFutureStart = time.Hour
)

var varKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// analysisNames lists the configured analyses for an error message (at most 20).
func analysisNames[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	names := slices.Sorted(maps.Keys(m))
	for i, n := range names {
		names[i] = fmt.Sprintf("%q", n)
	}
	if len(names) > 20 {
		names = append(names[:20], fmt.Sprintf("and %d more", len(names)-20))
	}
	return strings.Join(names, ", ")
}

func checkVars(field string, vars map[string]string) error {
	if len(vars) > maxVars {
		return inputErr(field, "at most %d variables", maxVars)
	}
	for k, v := range vars {
		if !varKeyRe.MatchString(k) {
			return inputErr(field+"."+k, "variable names must match %s", varKeyRe)
		}
		if len(v) > maxValueLen {
			return inputErr(field+"."+k, "longer than %d bytes", maxValueLen)
		}
		if err := CheckText(field+"."+k, v); err != nil {
			return err
		}
		// Values are pasted into queries: quotes and backslashes would let a value change
		// the query instead of filling a label. Each provider may refuse more (ValueChecker).
		if strings.ContainsAny(v, "\"'`\\") {
			return inputErr(field+"."+k, "must not contain quotes or backslashes")
		}
	}
	return nil
}

// Register validates a registration against the current config, stores the canary with
// a snapshot of its analysis, and schedules its first interval. Validation errors are
// *InputError. A keyed registration is RegisterByKey's: the canary its key names when the
// request is the same, a *KeyConflictError when it is not.
func (s *Scheduler) Register(ctx context.Context, r Registration) (*Canary, error) {
	c, _, err := s.RegisterByKey(ctx, r)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// register validates and stores a new canary; a key another canary holds is
// ErrKeyExists, from the store.
func (s *Scheduler) register(ctx context.Context, r Registration) (*Canary, error) {
	env := s.env.Load()
	if env == nil {
		return nil, errors.New("register: no config loaded")
	}
	a, err := checkRequest(env, r)
	if err != nil {
		return nil, err
	}
	lim := s.limits.Load()
	warmup := a.Warmup
	var lifetime, interval time.Duration
	if r.End.IsZero() {
		lifetime, interval, err = timing(a, r, lim)
	} else {
		lifetime, err = window(a, r, lim)
		interval, warmup = lifetime, 0
	}
	if err != nil {
		return nil, err
	}
	now := s.o.Clock.Now()
	start, err := startOf(r, now, lim)
	if err != nil {
		return nil, err
	}
	if start, err = onGridStart(env, a, r, start, warmup); err != nil {
		return nil, err
	}
	if err := checkThresholds(r.Thresholds); err != nil {
		return nil, err
	}
	if err := s.checkQueries(env, a, r); err != nil {
		return nil, err
	}
	release, err := s.reserve(a, lim)
	if err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		release()
		return nil, err
	}
	c := &Canary{
		ID: id, Name: r.Name, Analysis: a.Name, AnalysisHash: a.Hash,
		Baseline: nonNil(r.Baseline), Canary: nonNil(r.Canary), Vars: r.Vars, DryRun: r.DryRun, Key: r.Key,
		Start: start, Lifetime: lifetime, Interval: interval, Warmup: warmup,
		Intervals:  IntervalCount(lifetime, interval),
		Thresholds: r.Thresholds,
		Status:     StatusRunning, CreatedAt: now, UpdatedAt: now,
	}
	if r.Key != "" {
		c.Asked = &Asked{Lifetime: r.Lifetime, Interval: r.Interval, Start: r.Start, End: r.End}
	}
	c.NextIndex = c.FirstJudged()
	if s.o.Preflight != nil {
		// Last: the checks may take seconds (bounded by the request and each
		// actuator's preflight_timeout); a request refused by the checks above never
		// waits for them.
		if c.Preflight, err = s.o.Preflight(ctx, a, c); err != nil {
			release()
			return nil, err
		}
	}
	if err := s.o.Store.Create(ctx, c, a.Source); err != nil {
		release()
		return nil, fmt.Errorf("register: %w", err)
	}
	s.o.Snapshots.remember(a)
	s.mu.Lock()
	s.counts[StatusRunning]++
	s.syncCountsLocked()
	s.mu.Unlock()
	s.log.Info("canary registered", zap.String("canary", c.ID), zap.String("name", c.Name),
		zap.String("analysis", c.Analysis), zap.Duration("lifetime", lifetime), zap.Duration("interval", interval),
		zap.Bool("dry_run", c.DryRun), zap.String("key", c.Key))
	for _, w := range PreflightWarnings(c.Preflight) {
		s.log.Warn("canary registered with a failed preflight", zap.String("canary", c.ID), zap.String("warning", w))
	}
	if st, ok := s.o.Actuation.(StartActuation); ok {
		cc := *c
		st.OnStart(ctx, &cc)
	}
	if s.o.Leases != nil {
		ok, err := s.o.Leases.Acquire(ctx, c.ID)
		if err != nil || !ok {
			// Stored: a replica's next renewal takes its lease and judges it.
			s.log.Warn("lease of a new canary not taken; a renewal takes it", zap.String("canary", c.ID), zap.Error(err))
			return c, nil
		}
		s.acquired(c.ID)
	}
	s.schedule(dueItem{id: c.ID, index: c.NextIndex, at: c.IntervalEnd(c.NextIndex)})
	return c, nil
}

// checkRequest checks a registration's name, analysis and variables, and returns the
// analysis it names.
func checkRequest(env *Env, r Registration) (*config.Analysis, error) {
	switch {
	case strings.TrimSpace(r.Name) == "":
		return nil, inputErr("name", "required")
	case len(r.Name) > maxNameLen:
		return nil, inputErr("name", "longer than %d bytes", maxNameLen)
	case r.Analysis == "":
		return nil, inputErr("analysis", "required")
	}
	if err := CheckText("name", r.Name); err != nil {
		return nil, err
	}
	a, ok := env.Config.Analyses[r.Analysis]
	if !ok {
		return nil, inputErr("analysis", "unknown analysis %q; this server has %s", r.Analysis, analysisNames(env.Config.Analyses))
	}
	for _, v := range []struct {
		field string
		vars  map[string]string
	}{{"baseline", r.Baseline}, {"canary", r.Canary}, {"vars", r.Vars}} {
		if err := checkVars(v.field, v.vars); err != nil {
			return nil, err
		}
	}
	if len(r.Canary) > 0 && maps.Equal(r.Baseline, r.Canary) {
		return nil, inputErr("canary", "must differ from baseline: both cohorts would query the same series")
	}
	return a, nil
}

// timing is the canary's lifetime and interval: the analysis', or the registration's
// overrides, within the limits.
func timing(a *config.Analysis, r Registration, lim *Limits) (lifetime, interval time.Duration, err error) {
	lifetime, interval = a.Lifetime, a.Interval
	if r.Interval < 0 {
		return 0, 0, inputErr("interval", "must be > 0")
	}
	if r.Lifetime < 0 {
		return 0, 0, inputErr("lifetime", "must be > 0")
	}
	if r.Interval > 0 {
		interval = r.Interval
	}
	if r.Lifetime > 0 {
		lifetime = r.Lifetime
	}
	if floor := max(lim.MinInterval, a.Step); interval < floor {
		return 0, 0, inputErr("interval", "%s is shorter than %s (the longer of server.min_interval, %s, and the analysis' step, %s)",
			interval, floor, lim.MinInterval, a.Step)
	}
	switch {
	case lifetime < interval:
		return 0, 0, inputErr("lifetime", "%s is shorter than the interval (%s)", lifetime, interval)
	case lifetime <= a.Warmup:
		return 0, 0, inputErr("lifetime", "%s is not longer than the analysis' warmup (%s)", lifetime, a.Warmup)
	case lim.MaxLifetime > 0 && lifetime > lim.MaxLifetime:
		return 0, 0, inputErr("lifetime", "%s is longer than the server's max_lifetime (%s)", lifetime, lim.MaxLifetime)
	case IntervalCount(lifetime, interval) > maxIntervals:
		return 0, 0, inputErr("lifetime", "holds more than %d intervals of %s", maxIntervals, interval)
	}
	if m, ok := a.UnbreakableWindow(lifetime); ok {
		return 0, 0, inputErr("lifetime", "%s leaves %s after the analysis' warmup, shorter than metric %s's for (%s): it could never fail",
			lifetime, lifetime-a.Warmup, m.Name, m.Spec.For)
	}
	return lifetime, interval, nil
}

// window is a one-shot registration's lifetime, End − Start: at least the analysis'
// step (a window with no step in it has nothing to judge) and within max_lifetime. The
// server's min_interval does not apply: the window is judged once.
func window(a *config.Analysis, r Registration, lim *Limits) (time.Duration, error) {
	switch {
	case r.Start.IsZero():
		return 0, inputErr("start", "required with end: the window to judge is start..end")
	case r.Lifetime != 0:
		return 0, inputErr("lifetime", "must not be given with end: the lifetime is end − start")
	case r.Interval != 0:
		return 0, inputErr("interval", "must not be given with end: the window is judged once, as one interval")
	}
	lifetime := r.End.Sub(r.Start)
	switch {
	case lifetime < a.Step:
		return 0, inputErr("end", "%s is less than the analysis' step (%s) after start", lifetime, a.Step)
	case lim.MaxLifetime > 0 && lifetime > lim.MaxLifetime:
		return 0, inputErr("end", "the window (%s) is longer than the server's max_lifetime (%s)", lifetime, lim.MaxLifetime)
	}
	for _, m := range a.Metrics {
		if m.Spec.Kind.Window() && m.Spec.For > lifetime {
			return 0, inputErr("end", "the window (%s) is shorter than metric %s's for (%s): it could never fail", lifetime, m.Name, m.Spec.For)
		}
	}
	return lifetime, nil
}

// checkThresholds checks a registration's own score thresholds.
func checkThresholds(t *Thresholds) error {
	switch {
	case t == nil:
		return nil
	case math.IsNaN(t.Pass) || t.Pass <= 0 || t.Pass > 100:
		return inputErr("thresholds.pass", "must be > 0 and at most 100")
	case math.IsNaN(t.Marginal) || t.Marginal < 0 || t.Marginal > t.Pass:
		return inputErr("thresholds.marginal", "must be within 0..pass (%g)", t.Pass)
	}
	return nil
}

// startOf is when the canary started: the registration's start, or now.
func startOf(r Registration, now time.Time, lim *Limits) (time.Time, error) {
	switch maxPast := lim.MaxLifetime; {
	case r.Start.IsZero():
		return now, nil
	case r.Start.After(now.Add(maxFutureStart)):
		return time.Time{}, inputErr("start", "more than %s in the future", maxFutureStart)
	case maxPast > 0 && r.Start.Before(now.Add(-maxPast)):
		// Every interval since start is judged at once: bound that backlog.
		return time.Time{}, inputErr("start", "more than server.max_lifetime (%s) in the past", maxPast)
	}
	return r.Start, nil
}

// onGridStart puts a canary's steps on its provider's grid when the provider has one of
// its own (StepAligner) and the analysis has counts or histogram metrics, which can only
// be judged there: a default start (now) moves forward to the first start whose steps
// (start plus warmup) are on it, at most a step later; a start the caller gave off it is
// refused, naming the grid.
func onGridStart(env *Env, a *config.Analysis, r Registration, start time.Time, warmup time.Duration) (time.Time, error) {
	i := slices.IndexFunc(a.Metrics, func(m config.Metric) bool { return sequential(&m) })
	if i < 0 {
		return start, nil
	}
	al, ok := env.Providers[a.Provider].(StepAligner)
	if !ok {
		return start, nil
	}
	unit := al.StepAlignment(a.Step)
	off := time.Duration(start.Add(warmup).UnixNano() % int64(max(unit, 1)))
	if unit <= 0 || off == 0 {
		return start, nil
	}
	if r.Start.IsZero() {
		return start.Add(unit - off), nil
	}
	return time.Time{}, inputErr("start", "%s plus the warmup (%s) is off provider %q's grid: its %s buckets are on multiples of %s since the epoch, "+
		"and metric %q (%s) can only be judged on them; give a start %s earlier or %s later",
		r.Start.UTC().Format(time.RFC3339Nano), warmup, a.Provider, a.Step, unit, a.Metrics[i].Name, a.Metrics[i].Spec.Kind, off, unit-off)
}

// checkQueries renders every query for both cohorts now: a missing variable is the
// caller's mistake and must fail the request, not the canary half an hour later. Two
// cohorts that render the same query read the same series, and a canary compared with
// itself passes whatever it does: refuse it too. Then the provider checks the values
// its queries hold, and the registration check (the actuators') has its say.
func (s *Scheduler) checkQueries(env *Env, a *config.Analysis, r Registration) error {
	for _, m := range a.Metrics {
		for _, tpl := range m.Templates() {
			if err := checkRendered(m.Name, tpl, r); err != nil {
				return err
			}
		}
	}
	// Each provider's language gives meaning to other characters: a value must fill its
	// place in the query, never rewrite the query.
	if prov := env.Providers[a.Provider]; prov != nil {
		if err := checkQueryValues(prov, a, r); err != nil {
			return err
		}
	}
	if s.o.CheckRegistration != nil {
		probe := &Canary{Name: r.Name, Analysis: a.Name, Baseline: nonNil(r.Baseline), Canary: nonNil(r.Canary),
			Vars: nonNil(r.Vars), DryRun: r.DryRun, Status: StatusRunning}
		if err := s.o.CheckRegistration(a, probe); err != nil {
			return err
		}
	}
	return nil
}

// checkRendered renders one query of metric for both cohorts.
func checkRendered(metric string, tpl *metrics.QueryTemplate, r Registration) error {
	var rendered [2]string
	for i, co := range []struct {
		field string
		vars  map[string]string
	}{{"baseline", r.Baseline}, {"canary", r.Canary}} {
		text, err := tpl.Render(metrics.TemplateData{Cohort: co.vars, Vars: r.Vars})
		rendered[i] = text
		if err == nil {
			continue
		}
		if mv := (*metrics.MissingVarError)(nil); errors.As(err, &mv) {
			field := co.field + "." + mv.Name
			if mv.Scope == "Vars" {
				field = "vars." + mv.Name
			}
			// The field names the variable: the template engine's text adds nothing.
			return inputErr(field, "metric %s needs it", metric)
		}
		return inputErr(co.field, "metric %s needs it: %v", metric, err)
	}
	if rendered[0] == rendered[1] {
		why := "the cohorts hold the same variables"
		if d := differingKeys(r.Baseline, r.Canary); d != "" {
			why = "the cohorts differ only in " + d + ", which its query does not use"
		}
		return inputErr("canary", "metric %s renders the same query for both cohorts, so the canary would be compared with itself: %s", metric, why)
	}
	return nil
}

// reserve takes a running slot of the analysis before the canary is stored, so that
// concurrent registrations cannot overshoot the cap; release gives it back when the
// registration fails.
func (s *Scheduler) reserve(a *config.Analysis, lim *Limits) (release func(), err error) {
	limit := lim.MaxRunningPerAnalysis
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 && s.runningBy[a.Name] >= limit {
		return nil, &LimitError{Msg: fmt.Sprintf("analysis %s already has %d running canaries (server.max_running_per_analysis)", a.Name, limit)}
	}
	s.runningBy[a.Name]++
	return func() {
		s.mu.Lock()
		s.runningBy[a.Name]--
		s.mu.Unlock()
	}, nil
}

// differingKeys lists the variables whose values differ between two cohorts (one
// lacking a variable counts), sorted.
func differingKeys(a, b map[string]string) string {
	var keys []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// idEncoding is lowercase base32 without padding: URL-safe and easy to read out.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("canary id: %w", err)
	}
	return idEncoding.EncodeToString(b), nil
}

// MaxReasonLen caps an abort's or a promotion's reason.
const MaxReasonLen = 1000

func checkReason(reason string) error {
	if len(reason) > MaxReasonLen {
		return inputErr("reason", "longer than %d bytes", MaxReasonLen)
	}
	return CheckText("reason", reason)
}

// Abort ends a running canary as aborted; the fail actuators fire unless actuate is false.
// A reason that no stored text may hold is an *InputError.
func (s *Scheduler) Abort(ctx context.Context, id, reason string, actuate bool) (*Canary, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "aborted through the API"
	}
	return s.finish(ctx, id, ActionAbort, StatusAborted, CauseAPI, reason, actuate)
}

// Promote ends a running canary as passed: a human override, kept in its actions.
func (s *Scheduler) Promote(ctx context.Context, id, reason string) (*Canary, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "promoted through the API"
	}
	return s.finish(ctx, id, ActionPromote, StatusPass, CauseAPI, reason, true)
}

// finish ends a running canary now. It returns ErrFinished when the canary had already
// ended, and ErrNotFound when there is no such canary.
func (s *Scheduler) finish(ctx context.Context, id string, kind ActionKind, status Status, cause Cause, reason string, actuate bool) (*Canary, error) {
	// The analysis' recovery block says whether a failed end is watched; an analysis that
	// cannot be read watches nothing (and a canary that cannot be read fails below).
	var a *config.Analysis
	if cur, err := s.o.Store.Get(ctx, id); err == nil {
		a, _ = s.o.Snapshots.Analysis(ctx, cur)
	}
	now := s.o.Clock.Now()
	var act Action
	c, err := s.o.Store.Update(ctx, id, func(c *Canary) ([]Action, error) {
		if c.Status.Final() {
			return nil, fmt.Errorf("%w with status %s", ErrFinished, c.Status)
		}
		c.Status, c.Reason, c.EndedAt, c.UpdatedAt = status, reason, &now, now
		c.Recovery = nil
		startRecovery(c, a, now)
		c.Sequential = nil // evidence is kept only while the canary runs
		act = Action{CanaryID: c.ID, Time: now, Kind: kind, Status: status, Cause: cause, Reason: reason, Actuate: actuate && !c.DryRun}
		return []Action{act}, nil
	})
	if err != nil {
		return nil, err
	}
	s.ended(ctx, c, act)
	return c, nil
}

// Detail is a canary with every interval's result and its actions.
type Detail struct {
	*Canary
	Results []IntervalResult
	Actions []Action
}

// Get returns a canary with its intervals (and their points) and actions.
func (s *Scheduler) Get(ctx context.Context, id string) (*Detail, error) {
	return s.get(ctx, id, s.o.Store.Intervals)
}

// Summary is Get without the intervals' points, when the store can leave them out.
func (s *Scheduler) Summary(ctx context.Context, id string) (*Detail, error) {
	read := s.o.Store.Intervals
	if ss, ok := s.o.Store.(SummaryStore); ok {
		read = ss.IntervalSummaries
	}
	return s.get(ctx, id, read)
}

func (s *Scheduler) get(ctx context.Context, id string, intervals func(context.Context, string) ([]IntervalResult, error)) (*Detail, error) {
	c, err := s.o.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rs, err := intervals(ctx, id)
	if err != nil {
		return nil, err
	}
	as, err := s.o.Store.Actions(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Detail{Canary: c, Results: rs, Actions: as}, nil
}

// List returns the canaries with a status, or all of them for "".
func (s *Scheduler) List(ctx context.Context, status Status) ([]*Canary, error) {
	return s.o.Store.List(ctx, status)
}

// ListPage returns a page of the list, newest first.
func (s *Scheduler) ListPage(ctx context.Context, q ListQuery) (Page, error) {
	return s.o.Store.ListPage(ctx, q)
}

// CountByStatus counts the stored canaries by status.
func (s *Scheduler) CountByStatus(ctx context.Context) (map[Status]int, error) {
	return s.o.Store.CountByStatus(ctx)
}

// DeleteEnded deletes the canaries that ended before the given time, with their intervals
// and actions, batch canaries per store transaction so that no write waits long behind it,
// until none is left or ctx ends. It returns how many it deleted.
func (s *Scheduler) DeleteEnded(ctx context.Context, before time.Time, batch int) (int, error) {
	total := 0
	for {
		del, err := s.o.Store.DeleteEnded(ctx, before, batch)
		if err != nil {
			return total, err
		}
		if len(del) > 0 {
			s.mu.Lock()
			for _, c := range del {
				s.counts[c.Status]--
			}
			s.syncCountsLocked()
			s.mu.Unlock()
		}
		total += len(del)
		if len(del) < batch || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}
