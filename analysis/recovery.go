package analysis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
)

// RecoveryOutcome is where a failed canary's recovery watch is. Waiting and watching are
// the unfinished states a restart resumes; the others are final.
type RecoveryOutcome string

const (
	// RecoveryWaiting: the canary's fail actions (the rollback) have not all finished.
	RecoveryWaiting RecoveryOutcome = "waiting"
	// RecoveryWatching: the service is judged at every interval until the deadline.
	RecoveryWatching RecoveryOutcome = "watching"
	// RecoveryRecovered: every watched metric was back within tolerance of the
	// pre-canary reference, in both cohorts, at one check.
	RecoveryRecovered RecoveryOutcome = "recovered"
	// RecoveryNotRecovered: at the deadline a watched metric was still outside its
	// tolerance, or a rollback action failed.
	RecoveryNotRecovered RecoveryOutcome = "not_recovered"
	// RecoveryUnknown: the last check could not judge (a provider failed, no data) and
	// none found the service recovered. Never read as recovered.
	RecoveryUnknown RecoveryOutcome = "unknown"
)

// Final reports whether the watch is over.
func (o RecoveryOutcome) Final() bool {
	return o == RecoveryRecovered || o == RecoveryNotRecovered || o == RecoveryUnknown
}

// Recovery is a failed canary's recovery watch, stored with the canary and updated at
// each check in one store transaction, so that a restart resumes it where it was.
type Recovery struct {
	Outcome RecoveryOutcome `json:"outcome"`
	// Reason says why, in a sentence: the metric and its figures, the failed rollback's
	// error, or what could not be judged.
	Reason  string        `json:"reason,omitempty"`
	Within  time.Duration `json:"within"`
	Metrics []string      `json:"metrics"`
	// RolledBackAt is when the fail actions had all finished (the last one's end): the
	// watch runs from it until Deadline.
	RolledBackAt *time.Time `json:"rolled_back_at,omitempty"`
	Deadline     *time.Time `json:"deadline,omitempty"`
	// NextAt is when the watch looks next (while it is not final).
	NextAt time.Time `json:"next_at"`
	// Checks counts the checks made.
	Checks int `json:"checks,omitempty"`
	// DecidedAt is when the outcome was reached: for recovered, the end of the check
	// that found every metric back.
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	// Rollbacks are the fail actions as the watch found them finished.
	Rollbacks []RollbackAction `json:"rollbacks,omitempty"`
	// Figures are the last check's, per metric and cohort.
	Figures []RecoveryFigure `json:"figures,omitempty"`
	// Reference holds each metric's pre-canary points once fetched (dropped when the
	// watch ends), and ReferenceCohort whose they are.
	Reference       map[string][]float64 `json:"reference,omitempty"`
	ReferenceCohort map[string]string    `json:"reference_cohort,omitempty"`
}

// RecoveryFigure is one metric's check in one cohort.
type RecoveryFigure struct {
	Metric string `json:"metric"`
	Cohort string `json:"cohort"`
	// Error is set when a query failed (the figures are then empty).
	Error string `json:"error,omitempty"`
	judge.RecoveryResult
}

// RollbackAction is one of a canary's fail actions, as the safety layer recorded it.
type RollbackAction struct {
	Actuator string `json:"actuator"`
	State    string `json:"state"`
	// Notification: a notification actuator (slack, pagerduty), not a rollback.
	Notification bool       `json:"notification,omitempty"`
	Error        string     `json:"error,omitempty"`
	DoneAt       *time.Time `json:"done_at,omitempty"`
}

// Failed reports whether the action was a rollback that ran and failed.
func (r RollbackAction) Failed() bool { return !r.Notification && r.State == "failed" }

// Rollbacks tells the recovery watch what became of a canary's fail actions. The safety
// layer (the guard) implements it; a scheduler whose Actuation does not, starts the
// watch at the canary's end.
type Rollbacks interface {
	// FailActions returns the canary's on_fail actions; done is false until they are
	// planned and every one is final.
	FailActions(ctx context.Context, c *Canary) (done bool, actions []RollbackAction, err error)
}

// RecoveryActuation is told when a canary's recovery watch reaches its outcome (the
// guard records it in the audit log and fires on_not_recovered). An Actuation that
// implements it is told.
type RecoveryActuation interface {
	OnRecovery(ctx context.Context, c *Canary)
}

// recoveryPoll is how often a waiting watch asks whether the fail actions are done.
const recoveryPoll = 2 * time.Second

// clone is a deep copy, for stores that keep canaries in memory.
func (r *Recovery) clone() *Recovery {
	if r == nil {
		return nil
	}
	out := *r
	out.Metrics = slices.Clone(r.Metrics)
	out.Rollbacks = slices.Clone(r.Rollbacks)
	out.Figures = slices.Clone(r.Figures)
	out.ReferenceCohort = maps.Clone(r.ReferenceCohort)
	if r.Reference != nil {
		out.Reference = make(map[string][]float64, len(r.Reference))
		for k, v := range r.Reference {
			out.Reference[k] = slices.Clone(v)
		}
	}
	return &out
}

// CloneRecovery is a deep copy of c's recovery watch (nil for none).
func (c *Canary) CloneRecovery() *Recovery { return c.Recovery.clone() }

// startRecovery opens the watch on a canary that has just ended fail or aborted, when its
// analysis has a recovery block. It runs inside the store mutation that ends it.
func startRecovery(c *Canary, a *config.Analysis, now time.Time) {
	if a == nil || a.Recovery == nil || (c.Status != StatusFail && c.Status != StatusAborted) {
		return
	}
	c.Recovery = &Recovery{Outcome: RecoveryWaiting, Within: a.Recovery.Within, Metrics: slices.Clone(a.Recovery.Metrics), NextAt: now}
}

// scheduleRecovery queues c's next recovery step, if its watch is not over.
func (s *Scheduler) scheduleRecovery(c *Canary) {
	if r := c.Recovery; r != nil && !r.Outcome.Final() {
		s.schedule(dueItem{id: c.ID, index: r.Checks, at: r.NextAt, recovery: true})
	}
}

// watch is one step of a recovery watch: while waiting, ask whether the fail actions are
// done; while watching, judge the service once.
func (s *Scheduler) watch(ctx context.Context, it dueItem) {
	log := s.log.With(zap.String("canary", it.id), zap.Int("recovery_check", it.index+1))
	c, err := s.o.Store.Get(ctx, it.id)
	switch {
	case errors.Is(err, ErrNotFound):
		return
	case err != nil:
		s.retryRecovery(ctx, it, log, err)
		return
	case c.Recovery == nil || c.Recovery.Outcome.Final() || c.Recovery.Checks != it.index:
		return
	}
	if c.Recovery.Outcome == RecoveryWaiting {
		s.awaitRollback(ctx, c, it, log)
		return
	}
	s.checkRecovery(ctx, c, it, log)
}

// updateFailed says whether a watch's store update (its error err) ends this step: it
// does when the canary changed under it or is gone (nothing to do), and when the store
// failed (the step is retried later).
func (s *Scheduler) updateFailed(ctx context.Context, it dueItem, log *zap.Logger, err error) bool {
	switch {
	case errors.Is(err, errStale), errors.Is(err, ErrNotFound):
		return true
	case err != nil:
		s.retryRecovery(ctx, it, log, err)
		return true
	}
	return false
}

func (s *Scheduler) retryRecovery(ctx context.Context, it dueItem, log *zap.Logger, err error) {
	if ctx.Err() != nil {
		return
	}
	s.m.StoreErrors.Inc()
	log.Error("recovery watch: store failed; retrying", zap.Error(err), zap.Duration("retry_in", s.o.RetryDelay))
	it.at = s.o.Clock.Now().Add(s.o.RetryDelay)
	s.schedule(it)
}

// awaitRollback moves a waiting watch on once the fail actions are all final: to
// not_recovered when a rollback failed, else to watching from the last one's end.
func (s *Scheduler) awaitRollback(ctx context.Context, c *Canary, it dueItem, log *zap.Logger) {
	now := s.o.Clock.Now()
	done, acts := true, []RollbackAction(nil)
	if rb, ok := s.o.Actuation.(Rollbacks); ok {
		var err error
		done, acts, err = rb.FailActions(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("recovery watch: reading the fail actions failed; asking again", zap.Error(err))
			done = false
		}
	}
	if !done {
		it.at = now.Add(recoveryPoll)
		s.schedule(it)
		return
	}
	var rolledBack bool
	updated, err := s.o.Store.Update(ctx, c.ID, func(c *Canary) ([]Action, error) {
		r := c.Recovery
		if r == nil || r.Outcome != RecoveryWaiting || r.Checks != it.index {
			return nil, errStale
		}
		r.Rollbacks = acts
		var failed []string
		start := c.Ended()
		rolledBack = false
		for _, a := range acts {
			if a.Failed() {
				failed = append(failed, fmt.Sprintf("%s failed: %s", a.Actuator, a.Error))
			}
			if a.DoneAt != nil && a.DoneAt.After(start) {
				start = *a.DoneAt
			}
			if !a.Notification && a.State == "succeeded" {
				rolledBack = true
			}
		}
		r.RolledBackAt = &start
		if len(failed) > 0 {
			r.Outcome, r.DecidedAt = RecoveryNotRecovered, &start
			r.Reason = "the rollback failed: " + strings.Join(failed, "; ")
			return nil, nil
		}
		deadline := start.Add(r.Within)
		r.Outcome, r.Deadline = RecoveryWatching, &deadline
		r.NextAt = minTime(start.Add(c.Interval), deadline)
		return nil, nil
	})
	if s.updateFailed(ctx, it, log, err) {
		return
	}
	r := updated.Recovery
	if rolledBack {
		s.m.TimeToRollback.WithLabelValues(updated.Analysis).Observe(r.RolledBackAt.Sub(updated.Start).Seconds())
	}
	if r.Outcome.Final() {
		s.recoveryDecided(ctx, updated, log)
		return
	}
	log.Info("recovery watch started", zap.Time("from", *r.RolledBackAt), zap.Time("deadline", *r.Deadline), zap.Strings("metrics", r.Metrics))
	s.scheduleRecovery(updated)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// checkRecovery judges every watched metric once, over the last interval up to the
// check's time, in both cohorts, against the pre-canary reference, and records it.
func (s *Scheduler) checkRecovery(ctx context.Context, c *Canary, it dueItem, log *zap.Logger) {
	r := c.Recovery
	at := r.NextAt
	last := !at.Before(*r.Deadline)
	a, err := s.o.Snapshots.Analysis(ctx, c)
	var figures []RecoveryFigure
	newRef, newRefCohort := map[string][]float64{}, map[string]string{}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		figures = []RecoveryFigure{{Metric: strings.Join(r.Metrics, ","), Error: "the canary's analysis cannot be read: " + err.Error()}}
	} else {
		figures = s.judgeRecovery(ctx, c, a, at, newRef, newRefCohort)
		if ctx.Err() != nil {
			return
		}
	}
	outcome, reason := recoveryVerdict(figures, last)
	now := s.o.Clock.Now()
	updated, err := s.o.Store.Update(ctx, c.ID, func(c *Canary) ([]Action, error) {
		r := c.Recovery
		if r == nil || r.Outcome != RecoveryWatching || r.Checks != it.index {
			return nil, errStale
		}
		r.Checks++
		r.Figures = figures
		for k, v := range newRef {
			if r.Reference == nil {
				r.Reference, r.ReferenceCohort = map[string][]float64{}, map[string]string{}
			}
			r.Reference[k], r.ReferenceCohort[k] = v, newRefCohort[k]
		}
		if outcome == "" {
			r.NextAt = minTime(at.Add(c.Interval), *r.Deadline)
			if !r.NextAt.After(at) { // a deadline that does not move on: decide now
				outcome, reason = recoveryVerdict(figures, true)
			} else {
				r.Reason = reason
				return nil, nil
			}
		}
		decided := at
		if outcome != RecoveryRecovered && now.Before(decided) {
			decided = now
		}
		r.Outcome, r.Reason, r.DecidedAt = outcome, reason, &decided
		r.Reference, r.ReferenceCohort = nil, nil
		return nil, nil
	})
	if s.updateFailed(ctx, it, log, err) {
		return
	}
	if updated.Recovery.Outcome.Final() {
		s.recoveryDecided(ctx, updated, log)
		return
	}
	log.Debug("recovery check", zap.String("state", updated.Recovery.Reason))
	s.scheduleRecovery(updated)
}

// recoveryVerdict is a check's outcome. A metric is back when no cohort is outside its
// tolerance, no query failed and a cohort is within (a cohort without data says
// nothing). Every metric back is recovered; otherwise, at the last check, a metric
// outside is not_recovered and anything else unknown; before it, "" (look again).
func recoveryVerdict(figs []RecoveryFigure, last bool) (RecoveryOutcome, string) {
	type state struct {
		within                  bool
		outside, failed, nodata []string
	}
	per := map[string]*state{}
	var order []string
	for _, f := range figs {
		st, ok := per[f.Metric]
		if !ok {
			st = &state{}
			per[f.Metric] = st
			order = append(order, f.Metric)
		}
		label := f.Metric + ": "
		if f.Cohort != "" {
			label = f.Metric + " (" + f.Cohort + "): "
		}
		switch {
		case f.Error != "":
			st.failed = append(st.failed, label+f.Error)
		case f.NoData:
			st.nodata = append(st.nodata, label+"no data: "+f.Reason)
		case f.Within:
			st.within = true
		default:
			st.outside = append(st.outside, label+f.Reason)
		}
	}
	var outside, unknown []string
	for _, m := range order {
		st := per[m]
		outside = append(outside, st.outside...)
		if len(st.outside) > 0 {
			continue
		}
		// A failed query is never read as back; a cohort without data is, beside one
		// that is within.
		unknown = append(unknown, st.failed...)
		if !st.within {
			unknown = append(unknown, st.nodata...)
		}
	}
	switch {
	case len(order) > 0 && len(outside) == 0 && len(unknown) == 0:
		return RecoveryRecovered, "every watched metric is back within tolerance of the pre-canary reference"
	case !last && len(outside) > 0:
		return "", "not yet: " + strings.Join(outside, "; ")
	case !last:
		return "", "not yet judged: " + strings.Join(unknown, "; ")
	case len(outside) > 0:
		return RecoveryNotRecovered, "still outside tolerance at the end of the watch: " + strings.Join(outside, "; ")
	}
	return RecoveryUnknown, "could not be judged at the end of the watch: " + strings.Join(unknown, "; ")
}

// judgeRecovery queries and judges every watched metric for both cohorts over the
// interval ending at at. Missing references are fetched into ref (and refCohort).
func (s *Scheduler) judgeRecovery(ctx context.Context, c *Canary, a *config.Analysis, at time.Time, ref map[string][]float64, refCohort map[string]string) []RecoveryFigure {
	env := s.env.Load()
	var prov metrics.Provider
	if env != nil {
		prov = env.Providers[a.Provider]
	}
	r := c.Recovery
	byName := map[string]*config.Metric{}
	for i := range a.Metrics {
		byName[a.Metrics[i].Name] = &a.Metrics[i]
	}
	out := make([][]RecoveryFigure, len(r.Metrics))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, name := range r.Metrics {
		m := byName[name]
		switch {
		case m == nil:
			out[i] = []RecoveryFigure{{Metric: name, Error: "not a metric of the canary's analysis"}}
			continue
		case prov == nil:
			out[i] = []RecoveryFigure{{Metric: name, Error: fmt.Sprintf("provider %q is not configured", a.Provider)}}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.Spec.Kind == judge.KindCounts {
				out[i] = s.recoveryCounts(ctx, c, a, prov, m, at, &mu, ref, refCohort)
				return
			}
			points, have := r.Reference[name], r.Reference[name] != nil
			if !have {
				var cohort string
				var err error
				points, cohort, err = s.recoveryReference(ctx, c, a, prov, m, r.Within)
				if err != nil {
					out[i] = []RecoveryFigure{{Metric: name, Cohort: "reference", Error: err.Error()}}
					return
				}
				if len(points) > 0 {
					mu.Lock()
					ref[name], refCohort[name] = points, cohort
					mu.Unlock()
				}
			}
			out[i] = s.recoveryCurrent(ctx, c, a, prov, m, at, points)
		}()
	}
	wg.Wait()
	var figs []RecoveryFigure
	for _, f := range out {
		figs = append(figs, f...)
	}
	return figs
}

// recoveryReference is a metric's pre-canary points: the baseline cohort's over the
// window of length within that ends at the canary's start, or, when it has none there,
// the canary cohort's (the service's own values then).
func (s *Scheduler) recoveryReference(ctx context.Context, c *Canary, a *config.Analysis, prov metrics.Provider, m *config.Metric, within time.Duration) ([]float64, string, error) {
	q := metrics.Query{Start: c.Start.Add(-within), End: c.Start.Add(-a.Step), Step: a.Step}
	for i, cohort := range []map[string]string{c.Baseline, c.Canary} {
		text, err := m.Template.Render(templateData(prov, cohort, c.Vars))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", cohortName(i), err)
		}
		q.Text = text
		series, err := s.query(ctx, c.ID, a.Provider, prov, q)
		if err != nil {
			return nil, "", fmt.Errorf("%s query before the canary: %w", cohortName(i), err)
		}
		if v := values(merged(series)); len(v) > 0 {
			return v, cohortName(i), nil
		}
	}
	return nil, "", nil
}

// recoveryCounts judges a counts metric: the errors and requests of each cohort over the
// last interval up to at against the reference's error rate (its errors and requests
// summed over the window before the canary, kept as [errors, requests]).
func (s *Scheduler) recoveryCounts(ctx context.Context, c *Canary, a *config.Analysis, prov metrics.Provider, m *config.Metric, at time.Time,
	mu *sync.Mutex, ref map[string][]float64, refCohort map[string]string) []RecoveryFigure {
	r := c.Recovery
	counts, have := r.Reference[m.Name], r.Reference[m.Name] != nil
	if !have {
		q := metrics.Query{Start: c.Start.Add(-r.Within), End: c.Start.Add(-a.Step), Step: a.Step}
		for i, cohort := range []map[string]string{c.Baseline, c.Canary} {
			e, n, err := s.cohortCounts(ctx, c, a, prov, m, cohort, q)
			if err != nil {
				return []RecoveryFigure{{Metric: m.Name, Cohort: "reference", Error: fmt.Sprintf("%s before the canary: %v", cohortName(i), err)}}
			}
			if n > 0 {
				counts = []float64{e, n}
				mu.Lock()
				ref[m.Name], refCohort[m.Name] = counts, cohortName(i)
				mu.Unlock()
				break
			}
		}
	}
	var refE, refN float64
	if len(counts) == 2 {
		refE, refN = counts[0], counts[1]
	}
	from := at.Add(-c.Interval + a.Step)
	if from.After(at) {
		from = at
	}
	var figs [2]RecoveryFigure
	var wg sync.WaitGroup
	for i, cohort := range []map[string]string{c.Baseline, c.Canary} {
		figs[i] = RecoveryFigure{Metric: m.Name, Cohort: cohortName(i)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, n, err := s.cohortCounts(ctx, c, a, prov, m, cohort, metrics.Query{Start: from, End: at, Step: a.Step})
			if err != nil {
				figs[i].Error = err.Error()
				return
			}
			figs[i].RecoveryResult = judge.RecoveryCounts(m.Spec, refE, refN, e, n)
		}()
	}
	wg.Wait()
	return dropEmptyCohort(figs)
}

// cohortCounts sums a counts metric's errors and requests over q's steps for one cohort:
// errors count at the steps that have requests (an absent errors series is zero errors),
// as the counts judge reads them.
func (s *Scheduler) cohortCounts(ctx context.Context, c *Canary, a *config.Analysis, prov metrics.Provider, m *config.Metric, cohort map[string]string, q metrics.Query) (errs, reqs float64, err error) {
	var series [2]metrics.Series
	for j, tpl := range []*metrics.QueryTemplate{m.Template, m.RequestsTemplate} {
		text, err := tpl.Render(templateData(prov, cohort, c.Vars))
		if err != nil {
			return 0, 0, err
		}
		q.Text = text
		if series[j], err = s.query(ctx, c.ID, a.Provider, prov, q); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", queryName(m, j), err)
		}
	}
	e, n := summed(series[0]), summed(series[1])
	ok := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
	for t, v := range n {
		if !ok(v) {
			continue
		}
		reqs += v
		if ev, has := e[t]; has && ok(ev) {
			errs += ev
		}
	}
	return errs, reqs, nil
}

// dropEmptyCohort leaves out a cohort with no points (its pods gone after the rollback)
// when the other one could be judged: that one is the service.
func dropEmptyCohort(figs [2]RecoveryFigure) []RecoveryFigure {
	if figs[0].NoData && figs[0].NCurrent == 0 && figs[1].Error == "" && !figs[1].NoData {
		return figs[1:]
	}
	if figs[1].NoData && figs[1].NCurrent == 0 && figs[0].Error == "" && !figs[0].NoData {
		return figs[:1]
	}
	return figs[:]
}

// recoveryCurrent judges one metric's last interval up to at, in each cohort.
func (s *Scheduler) recoveryCurrent(ctx context.Context, c *Canary, a *config.Analysis, prov metrics.Provider, m *config.Metric, at time.Time, ref []float64) []RecoveryFigure {
	from := at.Add(-c.Interval + a.Step)
	if from.After(at) {
		from = at
	}
	var figs [2]RecoveryFigure
	var wg sync.WaitGroup
	for i, cohort := range []map[string]string{c.Baseline, c.Canary} {
		figs[i] = RecoveryFigure{Metric: m.Name, Cohort: cohortName(i)}
		text, err := m.Template.Render(templateData(prov, cohort, c.Vars))
		if err != nil {
			figs[i].Error = err.Error()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			series, err := s.query(ctx, c.ID, a.Provider, prov, metrics.Query{Text: text, Start: from, End: at, Step: a.Step})
			if err != nil {
				figs[i].Error = "query: " + err.Error()
				return
			}
			figs[i].RecoveryResult = judge.Recovery(m.Spec, ref, values(merged(series)))
		}()
	}
	wg.Wait()
	return dropEmptyCohort(figs)
}

// recoveryDecided counts, logs and reports a watch that reached its outcome.
func (s *Scheduler) recoveryDecided(ctx context.Context, c *Canary, log *zap.Logger) {
	r := c.Recovery
	s.m.Rollbacks.WithLabelValues(c.Analysis, string(r.Outcome)).Inc()
	if r.Outcome == RecoveryRecovered && r.DecidedAt != nil {
		s.m.TimeToRecover.WithLabelValues(c.Analysis).Observe(r.DecidedAt.Sub(c.Start).Seconds())
	}
	lvl := log.Info
	if r.Outcome != RecoveryRecovered {
		lvl = log.Warn
	}
	lvl("recovery watch ended", zap.String("analysis", c.Analysis), zap.String("outcome", string(r.Outcome)), zap.String("reason", r.Reason))
	if ra, ok := s.o.Actuation.(RecoveryActuation); ok {
		ra.OnRecovery(ctx, c)
	}
}
