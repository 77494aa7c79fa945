package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/canaryd/canaryd/analysis/eval"
	"github.com/canaryd/canaryd/analysis/eval/promsim"
	"github.com/canaryd/canaryd/judge"
)

type evalPromArgs struct {
	files, variants []string
	only            string
	runsAA, runsAB  int
	seed            int64
	asJSON          bool
	svg             string
	workers, wave   int
	quiet           bool
	dataDir         string
	oracle          bool
	oracleOnly      bool
}

// oracleAlpha is the oracle's level: the sequential judges' default alpha, which the
// shipped presets use.
const oracleAlpha = judge.DefaultAlpha

// defaultPromConfig is what --backend prometheus evaluates without --config: the
// generated series are the golden-signals preset's (http_requests_total,
// http_request_duration_seconds); the synthetic configs' queries are not PromQL.
const defaultPromConfig = "configs/golden-signals.yml"

// runEvalPrometheus is `canaryd eval --backend prometheus`: promsim's scenarios backfilled
// into a real Prometheus, each analysis' PromQL as written, through the daemon's scheduler
// and the Prometheus provider.
func runEvalPrometheus(a evalPromArgs, stdout, stderr io.Writer) int {
	var names []string
	if a.only != "" {
		for _, n := range strings.Split(a.only, ",") {
			names = append(names, strings.TrimSpace(n))
		}
	}
	scenarios, err := promsim.Pick(names)
	if err != nil {
		var all []string
		for _, s := range promsim.DefaultScenarios() {
			all = append(all, s.Name)
		}
		fmt.Fprintf(stderr, "eval: --scenarios: %v, want some of %s\n", err, strings.Join(all, ","))
		return 2
	}
	files := a.files
	if len(files) == 0 {
		files = []string{defaultPromConfig}
	}
	targets, err := eval.LoadPromFiles(files, kinds())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, v := range a.variants {
		t, err := eval.ParseVariant(v, targets)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		targets = append(targets, t)
	}
	if a.oracleOnly {
		runs, err := promsim.OracleOnly(promsim.Options{Targets: targets, Scenarios: scenarios, RunsAA: a.runsAA, RunsAB: a.runsAB, Seed: a.seed})
		if err == nil {
			err = writeOracle(stdout, scenarios, runs, nil, targets, a.asJSON)
		}
		if err != nil {
			fmt.Fprintln(stderr, "eval:", err)
			return 1
		}
		return 0
	}
	if a.dataDir != "" {
		if err := os.MkdirAll(a.dataDir, 0o755); err != nil {
			fmt.Fprintln(stderr, "eval:", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := promsim.Options{Targets: targets, Scenarios: scenarios, RunsAA: a.runsAA, RunsAB: a.runsAB, Seed: a.seed,
		Workers: a.workers, Wave: a.wave, Dir: a.dataDir, Kinds: kinds()}
	if !a.quiet {
		t0 := time.Now()
		opts.Stage = func(msg string) { fmt.Fprintln(stderr, msg) }
		opts.Progress = func(target string, done, total int) {
			fmt.Fprintf(stderr, "\reval %-32s %6d/%-6d canaries  %5.1fs", target, done, total, time.Since(t0).Seconds())
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	var res *eval.Result
	var oracle []promsim.OracleRun
	if a.oracle {
		res, oracle, err = promsim.EvaluateOracle(ctx, opts)
	} else {
		res, err = promsim.Evaluate(ctx, opts)
	}
	if err != nil {
		fmt.Fprintln(stderr, "eval:", err)
		return 1
	}
	rep := eval.Summarize(res)
	if a.svg != "" {
		if err := writeSVG(a.svg, rep); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if a.asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err == nil && a.oracle {
		err = writeOracle(stdout, scenarios, oracle, res, targets, a.asJSON)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// writeOracle writes the oracle next to each analysis and each analysis' misses by
// canary traffic (after the report; with --json, as a second JSON document).
func writeOracle(w io.Writer, scenarios []promsim.Scenario, runs []promsim.OracleRun, res *eval.Result, targets []eval.Target, asJSON bool) error {
	interval := targets[0].Interval
	for _, t := range targets[1:] {
		if t.Lifetime > targets[0].Lifetime {
			interval = t.Interval
		}
	}
	orep := promsim.SummarizeOracle(scenarios, runs, res, oracleAlpha, interval)
	if asJSON {
		return orep.WriteJSON(w)
	}
	fmt.Fprintf(w, "\nThe oracle (level %g, from the true onset, looks every %s), next to each analysis judged on the same runs:\n\n", oracleAlpha,
		strings.TrimSuffix(interval.String(), "0s"))
	if err := orep.WriteTable(w); err != nil {
		return err
	}
	if res == nil {
		fmt.Fprintf(w, "\nRuns the oracle misses (not rejected at the last look) by the canary's request rate (req/s at a traffic factor of 1) and share:\n\n")
		return orep.WriteMisses(w, "")
	}
	for _, t := range targets {
		fmt.Fprintf(w, "\nMisses of %s by the canary's request rate (req/s at a traffic factor of 1) and share: missed by it / missed by the oracle of the runs:\n\n", t.Name)
		if err := orep.WriteMisses(w, t.Name); err != nil {
			return err
		}
	}
	return nil
}
