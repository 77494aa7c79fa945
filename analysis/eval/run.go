package eval

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/memstore"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/synthetic"
)

// Options say what to evaluate and how hard.
type Options struct {
	Targets   []Target
	Scenarios []Scenario
	// RunsAA and RunsAB are the runs per healthy and per regression scenario.
	RunsAA, RunsAB int
	// Seed makes every series; the same seed gives the same report.
	Seed int64
	// Workers is how many intervals are judged at once (default GOMAXPROCS).
	Workers int
	// Wave is how many canaries run at once (default 500): they all start together, and
	// the next wave starts when the last one has ended, which bounds memory.
	Wave int
	// Kinds are the provider types the analyses' configs are built with: eval needs
	// synthetic (and prometheus for PromConfig); the binary passes its registry.
	Kinds  config.Kinds
	Logger *zap.Logger
	// Progress, when set, is told after each wave.
	Progress func(target string, done, total int)
}

// Outcome is one simulated canary.
type Outcome struct {
	Target   string          `json:"target"`
	Scenario string          `json:"scenario"`
	Run      int             `json:"run"`
	Status   analysis.Status `json:"status"`
	// Onset is when the regression started, after the end of the warmup.
	Onset time.Duration `json:"onset"`
	// Detected: an interval failed after the onset; Detect is from the onset to the end of
	// the first such interval.
	Detected bool          `json:"detected"`
	Detect   time.Duration `json:"detect"`
	// FailedBeforeOnset: an interval failed before the regression began (a false alarm in
	// a step scenario).
	FailedBeforeOnset bool `json:"failed_before_onset,omitempty"`
	// Verdict is the time from the canary's start to its final status.
	Verdict   time.Duration `json:"verdict"`
	Intervals int           `json:"intervals"`
}

// Result is everything a Run measured.
type Result struct {
	Seed      int64         `json:"seed"`
	Targets   []Target      `json:"targets"`
	Scenarios []Scenario    `json:"scenarios"`
	Outcomes  []Outcome     `json:"-"`
	Elapsed   time.Duration `json:"elapsed"`
	// CanaryHours is the simulated time the canaries ran, start to final status.
	CanaryHours float64 `json:"canary_hours"`
	Intervals   int     `json:"intervals_judged"`
}

// Job is one canary to run: the variables it is registered with and what was injected.
type Job struct {
	// Scenario and Run name it in the outcomes.
	Scenario string
	Run      int
	// Baseline, Canary and Vars are the registration's cohort and shared variables.
	Baseline, Canary, Vars map[string]string
	// Onset is when the regression started, counted from the end of the warmup.
	Onset time.Duration
}

// simStart is the simulated clock's start: any fixed time does, a fixed one keeps
// reports reproducible.
var simStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Run evaluates every target on every scenario.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Wave <= 0 {
		o.Wave = 500
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if len(o.Targets) == 0 || len(o.Scenarios) == 0 {
		return nil, errors.New("eval: nothing to evaluate: no analysis or no scenario")
	}
	res := &Result{Seed: o.Seed, Targets: o.Targets, Scenarios: o.Scenarios}
	t0 := time.Now() // wall time on purpose: the eval's own speed
	for _, t := range o.Targets {
		if err := runTarget(ctx, o, t, res); err != nil {
			return nil, err
		}
	}
	res.Elapsed = time.Since(t0)
	return res, nil
}

// collector is the scheduler's Actuation: it only notes which canaries ended.
type collector struct {
	mu    sync.Mutex
	ended []*analysis.Canary
}

func (c *collector) OnVerdict(_ context.Context, can *analysis.Canary, _ analysis.Action) {
	c.mu.Lock()
	c.ended = append(c.ended, can)
	c.mu.Unlock()
}

func (c *collector) take() []*analysis.Canary {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ended
	c.ended = nil
	return out
}

func runTarget(ctx context.Context, o Options, t Target, res *Result) error {
	span := t.Lifetime - t.Warmup
	var jobs []Job
	regs := map[string]map[string]synthetic.Regression{}
	for si, sc := range o.Scenarios {
		n := o.RunsAB
		if sc.AA {
			n = o.RunsAA
		}
		for i := range n {
			// One stream per (seed, scenario, run): a run's series are the same whatever
			// the target, so targets are compared on the same canaries.
			r := rand.New(rand.NewPCG(uint64(o.Seed), uint64(si)<<32|uint64(i)))
			co := sc.Make(r, span)
			base, canary := fmt.Sprintf("%s.%d.b", sc.Name, i), fmt.Sprintf("%s.%d.c", sc.Name, i)
			j := Job{Scenario: sc.Name, Run: i, Baseline: map[string]string{"track": base}, Canary: map[string]string{"track": canary},
				Vars: map[string]string{"app": "web"}, Onset: co.Onset}
			if len(co.Baseline) > 0 {
				regs[base] = co.Baseline
			}
			if len(co.Canary) > 0 {
				regs[canary] = co.Canary
			}
			jobs = append(jobs, j)
		}
	}
	prov, err := synthetic.New(synthetic.Config{Seed: o.Seed, Regressions: regs}, o.Logger)
	if err != nil {
		return fmt.Errorf("eval %s: %w", t.Name, err)
	}
	cfg, err := simConfig(t, o.Kinds)
	if err != nil {
		return err
	}
	cache := newPrefixCache(prov, simStart.Add(t.Warmup), span)
	env := &analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{SimProvider: cache}}
	forget := func(j Job) { cache.forget(j.Baseline["track"], j.Canary["track"]) }
	return RunJobs(ctx, o, t, env, simStart, jobs, forget, res)
}

// RunJobs runs jobs of one target through the daemon's scheduler and judge on env, in
// waves of o.Wave canaries that all start at start on a simulated clock, and appends
// their outcomes to res. ended, when set, is told when a job's canary has finished.
func RunJobs(ctx context.Context, o Options, t Target, env *analysis.Env, start time.Time, jobs []Job, ended func(Job), res *Result) error {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Wave <= 0 {
		o.Wave = 500
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	for first := 0; first < len(jobs); first += o.Wave {
		if err := runWave(ctx, o, t, env, start, jobs[first:min(first+o.Wave, len(jobs))], ended, res); err != nil {
			return err
		}
		if o.Progress != nil {
			o.Progress(t.Name, min(first+o.Wave, len(jobs)), len(jobs))
		}
	}
	return nil
}

// runWave runs canaries that start together, on a scheduler, store and clock of their
// own: every wave starts at start, so a run's series (which depend on timestamps) are
// the same whatever the wave size, and a report does not depend on how it was batched.
func runWave(ctx context.Context, o Options, t Target, env *analysis.Env, start time.Time, wave []Job, ended func(Job), res *Result) error {
	store := memstore.New()
	defer store.Close()
	clock := NewClock(start)
	coll := &collector{}
	sched := analysis.NewScheduler(analysis.Options{
		Store: store, Clock: clock, Logger: o.Logger, Metrics: analysis.NewMetrics(prometheus.NewRegistry()),
		Actuation: coll, Workers: o.Workers,
		MaxConsecutiveErrors: env.Config.Scheduler.MaxConsecutiveErrors, QueryTimeout: time.Duration(env.Config.Scheduler.QueryTimeout),
		Limits: limitsFor(env, o.Wave),
	})
	sched.SetEnv(env)
	byID := map[string]Job{}
	for _, j := range wave {
		c, err := sched.Register(ctx, analysis.Registration{
			Name: fmt.Sprintf("%s.%d", j.Scenario, j.Run), Analysis: t.Name,
			Baseline: j.Baseline, Canary: j.Canary, Vars: j.Vars, Start: start,
		})
		if err != nil {
			return fmt.Errorf("eval %s: register %s.%d: %w", t.Name, j.Scenario, j.Run, err)
		}
		byID[c.ID] = j
	}
	for len(byID) > 0 {
		next, pending, err := sched.RunDue(ctx, o.Workers)
		if err != nil {
			return fmt.Errorf("eval %s: %w", t.Name, err)
		}
		for _, c := range coll.take() {
			j, ok := byID[c.ID]
			if !ok {
				continue
			}
			delete(byID, c.ID)
			out, n, err := outcome(ctx, store, t, j, c)
			if err != nil {
				return err
			}
			res.Outcomes = append(res.Outcomes, out)
			res.CanaryHours += out.Verdict.Hours()
			res.Intervals += n
			store.Delete(c.ID)
			if ended != nil {
				ended(j)
			}
		}
		if len(byID) == 0 {
			break
		}
		if !pending {
			return fmt.Errorf("eval %s: %d canaries still running with nothing scheduled", t.Name, len(byID))
		}
		clock.Set(next)
	}
	return nil
}

// simConfig is a config holding the target's analysis on the synthetic provider; the
// provider entry only names the kind, the scheduler gets the eval's own instance.
func simConfig(t Target, kinds config.Kinds) (*config.Config, error) {
	return targetConfig(t, SimProvider, yaml.MapSlice{{Key: "type", Value: "synthetic"}}, kinds)
}

// PromConfig is a config holding the target's analysis on a Prometheus at address (the
// scheduler is given its provider instance in the Env).
func PromConfig(t Target, address string, kinds config.Kinds) (*config.Config, error) {
	return targetConfig(t, PromProvider, yaml.MapSlice{{Key: "type", Value: "prometheus"}, {Key: "address", Value: address}}, kinds)
}

func targetConfig(t Target, provider string, spec yaml.MapSlice, kinds config.Kinds) (*config.Config, error) {
	var src yaml.MapSlice
	if err := yaml.Unmarshal(t.Source, &src); err != nil {
		return nil, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	doc := yaml.MapSlice{
		{Key: "providers", Value: yaml.MapSlice{{Key: provider, Value: spec}}},
		{Key: "analyses", Value: yaml.MapSlice{{Key: t.Name, Value: src}}},
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	cfg, err := config.Parse(b, kinds)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	return cfg, nil
}

// outcome reads what a finished canary did from its recorded intervals.
func outcome(ctx context.Context, store analysis.Store, t Target, j Job, c *analysis.Canary) (Outcome, int, error) {
	rs, err := store.Intervals(ctx, c.ID)
	if err != nil {
		return Outcome{}, 0, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	out := Outcome{Target: t.Name, Scenario: j.Scenario, Run: j.Run, Status: c.Status, Onset: j.Onset, Intervals: len(rs)}
	if c.EndedAt != nil {
		out.Verdict = c.EndedAt.Sub(c.Start)
	}
	onsetAt := c.Start.Add(c.Warmup + j.Onset)
	for _, r := range rs {
		if r.Score.Verdict != judge.VerdictFail && len(r.Score.CriticalFailures) == 0 {
			continue
		}
		if !r.End.After(onsetAt) {
			out.FailedBeforeOnset = true
			continue
		}
		out.Detected, out.Detect = true, r.End.Sub(onsetAt)
		break
	}
	return out, len(rs), nil
}

// limitsFor are the config's registration limits, with room for a whole wave of one
// analysis running at once.
func limitsFor(env *analysis.Env, wave int) analysis.Limits {
	l := analysis.LimitsOf(env.Config.Server)
	if l.MaxRunningPerAnalysis <= wave {
		l.MaxRunningPerAnalysis = wave + 1
	}
	return l
}
