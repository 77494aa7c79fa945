package promsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/analysis"
	"github.com/canaryd/canaryd/analysis/eval"
	"github.com/canaryd/canaryd/config"
	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/prometheus"
	"github.com/canaryd/canaryd/metrics/prometheus/promserver"
)

// Lead is how long every series exists before its canary starts.
const Lead = 5 * time.Minute

// Retention keeps backfilled data whatever its age (Prometheus deletes blocks older than
// its retention at start).
const Retention = 100 * 365 * 24 * time.Hour

// Options say what to evaluate on Prometheus and how hard.
type Options struct {
	// Targets keep their PromQL (eval.NewPromTarget, eval.LoadPromFiles).
	Targets   []eval.Target
	Scenarios []Scenario
	// RunsAA and RunsAB are the runs per healthy and per regression scenario.
	RunsAA, RunsAB int
	// Seed makes every series; the same seed gives the same data and report.
	Seed int64
	// Workers (intervals judged at once; default 8, the judging waits on Prometheus) and
	// Wave (canaries at once; default 500) are eval's.
	Workers, Wave int
	// Dir holds the OpenMetrics file and the TSDB; "" is a temporary directory removed at
	// the end.
	Dir string
	// Now places the data: it ends hours before Now (default the wall clock).
	Now time.Time
	// Kinds has the prometheus provider type the analyses' configs are built with.
	Kinds  config.Kinds
	Logger *zap.Logger
	// Progress, when set, is told after each wave; Stage before each step of the set-up.
	Progress func(target string, done, total int)
	Stage    func(msg string)
}

// NewLayout places a canary of lifetime and warmup so that its data, Lead included, lies
// in one 2-hour TSDB block (promtool parses its input once per block) that ended at least
// 3 hours before now.
func NewLayout(now time.Time, lifetime, warmup time.Duration) Layout {
	base := now.Add(-4 * time.Hour).Truncate(2 * time.Hour)
	return Layout{Start: base.Add(Lead), Lead: Lead, Lifetime: lifetime, Warmup: warmup}
}

// Dataset is every generated run of a scenario set.
type Dataset struct {
	Layout    Layout
	Scenarios []Scenario
	Runs      []Run
}

// GenerateAll draws runsAA runs of each healthy scenario and runsAB of each regression.
func GenerateAll(seed int64, scenarios []Scenario, runsAA, runsAB int, l Layout) *Dataset {
	d := &Dataset{Layout: l, Scenarios: scenarios}
	for si, sc := range scenarios {
		n := runsAB
		if sc.AA {
			n = runsAA
		}
		for i := range n {
			d.Runs = append(d.Runs, Generate(uint64(seed), si, sc, i, l))
		}
	}
	return d
}

// Backfill writes the dataset as OpenMetrics under dir and backfills it into dir/data with
// promtool; it returns the TSDB directory. The OpenMetrics file is removed afterwards.
func Backfill(ctx context.Context, d *Dataset, dir string) (string, error) {
	om := filepath.Join(dir, "series.om")
	f, err := os.Create(om)
	if err != nil {
		return "", fmt.Errorf("promsim: %w", err)
	}
	if err := WriteOpenMetrics(f, d.Layout, d.Runs); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("promsim: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return "", fmt.Errorf("promsim: %w", err)
	}
	if err := promserver.Backfill(ctx, om, data); err != nil {
		return "", fmt.Errorf("promsim: %w", err)
	}
	if err := os.Remove(om); err != nil {
		return "", fmt.Errorf("promsim: %w", err)
	}
	return data, nil
}

// Serve starts Prometheus on a TSDB directory (nothing scraped).
func Serve(ctx context.Context, dataDir string) (*promserver.Server, error) {
	cfg := filepath.Join(filepath.Dir(dataDir), "prometheus.yml")
	if err := promserver.WriteConfig(cfg, Step); err != nil {
		return nil, fmt.Errorf("promsim: %w", err)
	}
	s, err := promserver.Start(ctx, promserver.Options{DataDir: dataDir, ConfigFile: cfg, Retention: Retention})
	if err != nil {
		return nil, fmt.Errorf("promsim: %w", err)
	}
	return s, nil
}

// Evaluate generates the scenarios' data, backfills and serves it, and judges every run's
// canary with every target through the daemon's scheduler and the Prometheus provider.
func Evaluate(ctx context.Context, o Options) (*eval.Result, error) {
	res, _, err := evaluate(ctx, o, false)
	return res, err
}

// EvaluateOracle is Evaluate, and also runs the oracle on every run (Oracle), with looks
// at the intervals of the target with the longest lifetime.
func EvaluateOracle(ctx context.Context, o Options) (*eval.Result, []OracleRun, error) {
	return evaluate(ctx, o, true)
}

func evaluate(ctx context.Context, o Options, oracle bool) (*eval.Result, []OracleRun, error) {
	if len(o.Targets) == 0 || len(o.Scenarios) == 0 {
		return nil, nil, errors.New("promsim: nothing to evaluate: no analysis or no scenario")
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	stage := func(format string, args ...any) {
		if o.Stage != nil {
			o.Stage(fmt.Sprintf(format, args...))
		}
	}
	first := longest(o.Targets)
	l := NewLayout(o.Now, first.Lifetime, first.Warmup)
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "canaryd-promsim-")
		if err != nil {
			return nil, nil, fmt.Errorf("promsim: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	t0 := time.Now() // wall time on purpose: the eval's own speed
	d := GenerateAll(o.Seed, o.Scenarios, o.RunsAA, o.RunsAB, l)
	stage("promsim: %d runs generated (%d series, %d samples each) in %.1fs", len(d.Runs), 2*len(d.Runs)*(2+len(Buckets())+3), l.Steps(), time.Since(t0).Seconds())
	t1 := time.Now()
	data, err := Backfill(ctx, d, dir)
	if err != nil {
		return nil, nil, err
	}
	stage("promsim: backfilled %s with promtool in %.1fs", data, time.Since(t1).Seconds())
	srv, err := Serve(ctx, data)
	if err != nil {
		return nil, nil, err
	}
	defer srv.Stop()
	stage("promsim: prometheus serving it at %s", srv.URL)

	jobs := make([]eval.Job, len(d.Runs))
	for i, r := range d.Runs {
		jobs[i] = eval.Job{Scenario: r.Scenario, Run: r.Index, Onset: r.Onset,
			Baseline: map[string]string{"track": BaselineTrack}, Canary: map[string]string{"track": CanaryTrack},
			Vars: map[string]string{"app": r.App}}
	}
	var oracles []OracleRun
	if oracle {
		t2 := time.Now()
		oracles = oracleAll(d, first.Interval)
		stage("promsim: oracle on %d runs in %.1fs", len(d.Runs), time.Since(t2).Seconds())
	}
	d = nil // the TSDB holds the series now

	res := &eval.Result{Seed: o.Seed, Targets: o.Targets}
	for _, sc := range o.Scenarios {
		res.Scenarios = append(res.Scenarios, eval.Scenario{Name: sc.Name, Description: sc.Description, AA: sc.AA, Family: sc.Family, Size: sc.Size})
	}
	pcfg := prometheus.DefaultConfig()
	pcfg.Address = srv.URL
	prov, err := prometheus.New(pcfg, o.Logger)
	if err != nil {
		return nil, nil, fmt.Errorf("promsim: %w", err)
	}
	eo := eval.Options{Workers: o.Workers, Wave: o.Wave, Kinds: o.Kinds, Logger: o.Logger, Progress: o.Progress}
	for _, t := range o.Targets {
		cfg, err := eval.PromConfig(t, srv.URL, o.Kinds)
		if err != nil {
			return nil, nil, err
		}
		env := &analysis.Env{Config: cfg, Providers: map[string]metrics.Provider{eval.PromProvider: prov}}
		tj := jobs
		if t.Warmup != l.Warmup {
			// Onsets are fixed in the data: count them from this target's warmup.
			tj = make([]eval.Job, len(jobs))
			for i, j := range jobs {
				j.Onset += l.Warmup - t.Warmup
				tj[i] = j
			}
		}
		if err := eval.RunJobs(ctx, eo, t, env, l.Start, tj, nil, res); err != nil {
			return nil, nil, fmt.Errorf("promsim: %w", err)
		}
	}
	res.Elapsed = time.Since(t0)
	return res, oracles, nil
}

// longest is the target with the longest lifetime (the first of them): the data's layout
// and the oracle's looks are its.
func longest(targets []eval.Target) eval.Target {
	first := targets[0]
	for _, t := range targets[1:] {
		if t.Lifetime > first.Lifetime {
			first = t
		}
	}
	return first
}

func oracleAll(d *Dataset, interval time.Duration) []OracleRun {
	by := map[string]Scenario{}
	for _, sc := range d.Scenarios {
		by[sc.Name] = sc
	}
	out := make([]OracleRun, 0, len(d.Runs))
	for _, r := range d.Runs {
		out = append(out, Oracle(r, by[r.Scenario], d.Layout, interval))
	}
	return out
}

// OracleOnly generates the runs Evaluate would and runs the oracle on them, without
// Prometheus or any judge (Targets only set the schedule: the longest lifetime's).
func OracleOnly(o Options) ([]OracleRun, error) {
	if len(o.Targets) == 0 || len(o.Scenarios) == 0 {
		return nil, errors.New("promsim: nothing to evaluate: no analysis or no scenario")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	first := longest(o.Targets)
	d := GenerateAll(o.Seed, o.Scenarios, o.RunsAA, o.RunsAB, NewLayout(o.Now, first.Lifetime, first.Warmup))
	return oracleAll(d, first.Interval), nil
}
