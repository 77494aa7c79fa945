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
}

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
	res, err := promsim.Evaluate(ctx, opts)
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
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
