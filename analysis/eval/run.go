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
	"github.com/canaryd/canaryd/configs"
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
	Wave   int
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

type job struct {
	scenario int
	run      int
	base     string
	canary   string
	onset    time.Duration
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
	var jobs []job
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
			j := job{scenario: si, run: i, base: fmt.Sprintf("%s.%d.b", sc.Name, i), canary: fmt.Sprintf("%s.%d.c", sc.Name, i), onset: co.Onset}
			if len(co.Baseline) > 0 {
				regs[j.base] = co.Baseline
			}
			if len(co.Canary) > 0 {
				regs[j.canary] = co.Canary
			}
			jobs = append(jobs, j)
		}
	}
	prov, err := synthetic.New(synthetic.Config{Seed: o.Seed, Regressions: regs}, o.Logger)
	if err != nil {
		return fmt.Errorf("eval %s: %w", t.Name, err)
	}
	cfg, err := simConfig(t)
	if err != nil {
		return err
	}
	cfg.Server.MaxRunningPerAnalysis = o.Wave + 1
	cache := newPrefixCache(prov, span)
	env := &analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{SimProvider: cache}}
	for first := 0; first < len(jobs); first += o.Wave {
		if err := runWave(ctx, o, t, env, cache, jobs[first:min(first+o.Wave, len(jobs))], res); err != nil {
			return err
		}
		if o.Progress != nil {
			o.Progress(t.Name, min(first+o.Wave, len(jobs)), len(jobs))
		}
	}
	return nil
}

// runWave runs canaries that start together, on a scheduler, store and clock of their
// own: every wave starts at simStart, so a run's series (which depend on timestamps) are
// the same whatever the wave size, and a report does not depend on how it was batched.
func runWave(ctx context.Context, o Options, t Target, env *analysis.Env, cache *prefixCache, wave []job, res *Result) error {
	store := memstore.New()
	defer store.Close()
	clock := NewClock(simStart)
	coll := &collector{}
	sched := analysis.NewScheduler(analysis.Options{
		Store: store, Clock: clock, Logger: o.Logger, Metrics: analysis.NewMetrics(prometheus.NewRegistry()),
		Actuation: coll, Workers: o.Workers,
		MaxConsecutiveErrors: env.Config.Scheduler.MaxConsecutiveErrors, QueryTimeout: time.Duration(env.Config.Scheduler.QueryTimeout),
	})
	sched.SetEnv(env)
	byID := map[string]job{}
	for _, j := range wave {
		c, err := sched.Register(ctx, analysis.Registration{
			Name: j.canary, Analysis: t.Name,
			Baseline: map[string]string{"track": j.base}, Canary: map[string]string{"track": j.canary},
			Vars: map[string]string{"app": "web"},
		})
		if err != nil {
			return fmt.Errorf("eval %s: register %s: %w", t.Name, j.canary, err)
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
			out, n, err := outcome(ctx, store, t, o.Scenarios[j.scenario].Name, j, c)
			if err != nil {
				return err
			}
			res.Outcomes = append(res.Outcomes, out)
			res.CanaryHours += out.Verdict.Hours()
			res.Intervals += n
			store.Delete(c.ID)
			cache.forget(j.base, j.canary)
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
func simConfig(t Target) (*configs.Config, error) {
	var src yaml.MapSlice
	if err := yaml.Unmarshal(t.Source, &src); err != nil {
		return nil, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	doc := yaml.MapSlice{
		{Key: "providers", Value: yaml.MapSlice{{Key: SimProvider, Value: yaml.MapSlice{{Key: "type", Value: "synthetic"}}}}},
		{Key: "analyses", Value: yaml.MapSlice{{Key: t.Name, Value: src}}},
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	cfg, err := configs.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	return cfg, nil
}

// outcome reads what a finished canary did from its recorded intervals.
func outcome(ctx context.Context, store analysis.Store, t Target, scenario string, j job, c *analysis.Canary) (Outcome, int, error) {
	rs, err := store.Intervals(ctx, c.ID)
	if err != nil {
		return Outcome{}, 0, fmt.Errorf("eval %s: %w", t.Name, err)
	}
	out := Outcome{Target: t.Name, Scenario: scenario, Run: j.run, Status: c.Status, Onset: j.onset, Intervals: len(rs)}
	if c.EndedAt != nil {
		out.Verdict = c.EndedAt.Sub(c.Start)
	}
	onsetAt := c.Start.Add(c.Warmup + j.onset)
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
