package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/canaryd/canaryd/analysis/eval"
	"github.com/canaryd/canaryd/analysis/eval/promsim"
)

// runEval measures the judge: many simulated canaries per analysis and scenario through
// the daemon's scheduler on a simulated clock, on the synthetic provider or (--backend
// prometheus) on generated counters and histograms backfilled into a real Prometheus.
func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files []string
	fs.Func("config", "config file whose analyses to evaluate (repeatable; default configs/*.yml)", func(s string) error {
		files = append(files, s)
		return nil
	})
	var variants []string
	fs.Func("variant", "also evaluate NAME=BASE:key=value,metric.key=value,... (an analysis with settings changed; repeatable)", func(s string) error {
		variants = append(variants, s)
		return nil
	})
	backend := fs.String("backend", "synthetic", "synthetic (the embedded provider) or prometheus (generated series backfilled with promtool into a real Prometheus, queried with the analyses' PromQL as written)")
	dataDir := fs.String("data-dir", "", "prometheus backend: keep the OpenMetrics work and the TSDB in this directory (default a temporary one, removed)")
	runbook := fs.Bool("runbook", true, "also evaluate the runbook rule (error rate > 2% for 5m, p99 > 1.5× baseline for 10m); synthetic backend only")
	runsAA := fs.Int("runs", 2000, "runs per healthy (A/A) scenario")
	runsAB := fs.Int("runs-ab", 300, "runs per regression scenario")
	only := fs.String("scenarios", "", "comma-separated scenario names to run (default all)")
	seed := fs.Int64("seed", 1, "seed of every series; the same seed gives the same figures")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	svg := fs.String("svg", "", "write the detection-time plot to this SVG file")
	workers := fs.Int("workers", 0, "intervals judged at once (default GOMAXPROCS; 8 on the prometheus backend)")
	wave := fs.Int("wave", 500, "canaries running at once")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	oracleOnly := fs.Bool("oracle-only", false, "prometheus backend: run only the oracle on the generated runs (no Prometheus, no judge: seconds for thousands of runs); the analyses set the schedule")
	oracle := fs.Bool("oracle", false, "prometheus backend: also run the oracle (the most powerful fixed-horizon test at α = 1% knowing each regression's onset and effect, an upper bound for any valid judge) on the same runs, and break each analysis' misses down by canary traffic")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: canaryd eval [--backend synthetic|prometheus] [--config FILE]... [flags]")
		fmt.Fprintln(stderr, "Runs simulated canaries (healthy and regressed) through the scheduler and judge and reports")
		fmt.Fprintln(stderr, "false fail rates, detection rates and times to detect per analysis. Synthetic scenarios:")
		for _, s := range eval.DefaultScenarios() {
			fmt.Fprintf(stderr, "  %-27s %s\n", s.Name, s.Description)
		}
		fmt.Fprintln(stderr, "Prometheus scenarios (--backend prometheus; default config configs/golden-signals.yml):")
		for _, s := range promsim.DefaultScenarios() {
			fmt.Fprintf(stderr, "  %-27s %s\n", s.Name, s.Description)
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *runsAA < 0 || *runsAB < 0 || (*runsAA == 0 && *runsAB == 0) {
		fs.Usage()
		return 2
	}
	switch *backend {
	case "synthetic":
		if *oracle || *oracleOnly {
			fmt.Fprintln(stderr, "eval: --oracle and --oracle-only need --backend prometheus (the oracle reads the generated counts and buckets)")
			return 2
		}
	case "prometheus":
		return runEvalPrometheus(evalPromArgs{files: files, variants: variants, only: *only, runsAA: *runsAA, runsAB: *runsAB,
			seed: *seed, asJSON: *asJSON, svg: *svg, workers: *workers, wave: *wave, quiet: *quiet, dataDir: *dataDir, oracle: *oracle, oracleOnly: *oracleOnly}, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "eval: --backend: %q, want synthetic or prometheus\n", *backend)
		return 2
	}
	scenarios, err := pickScenarios(*only)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if len(files) == 0 {
		if files, err = filepath.Glob("configs/*.yml"); err != nil || len(files) == 0 {
			fmt.Fprintln(stderr, "eval: no --config given and no configs/*.yml here")
			return 2
		}
	}
	targets, err := eval.LoadFiles(files, kinds())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *runbook {
		targets = append(targets, eval.Runbook())
	}
	for _, v := range variants {
		t, err := eval.ParseVariant(v, targets)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		targets = append(targets, t)
	}
	// A batch job with memory to spare: collect garbage less often (GOGC still wins).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := eval.Options{Targets: targets, Scenarios: scenarios, RunsAA: *runsAA, RunsAB: *runsAB, Seed: *seed,
		Workers: *workers, Wave: *wave, Kinds: kinds()}
	if !*quiet {
		t0 := time.Now()
		opts.Progress = func(target string, done, total int) {
			fmt.Fprintf(stderr, "\reval %-32s %6d/%-6d canaries  %5.1fs", target, done, total, time.Since(t0).Seconds())
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "eval:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "eval:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	res, err := eval.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rep := eval.Summarize(res)
	if *svg != "" {
		if err := writeSVG(*svg, rep); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func pickScenarios(list string) ([]eval.Scenario, error) {
	all := eval.DefaultScenarios()
	if list == "" {
		return all, nil
	}
	byName := map[string]eval.Scenario{}
	var names []string
	for _, s := range all {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	var out []eval.Scenario
	for _, n := range strings.Split(list, ",") {
		s, ok := byName[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("eval: --scenarios: unknown scenario %q, want some of %s", n, strings.Join(names, ","))
		}
		out = append(out, s)
	}
	return out, nil
}

func writeSVG(path string, rep *eval.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if err := rep.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}
